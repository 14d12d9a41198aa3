package kit

import "time"

// tally counts the programs one part of the kit compiles (the kit's own,
// or its images'), for the events a person follows a cold kit's twenty
// minutes by: "progress" as each program starts and "built" as it ends,
// both with done and total. A terminal shows them as one updating line.
type tally struct {
	part        string // "kit programs" or "kit images"
	done, total int
	start       time.Time
}

// goComponent is one component built from a Go module, at its version.
type goComponent struct {
	name    string
	r       recipe
	version string
}

// startTally counts what the components lack from the cache; the
// programs built from here on are counted against it.
func (b *Builder) startTally(part, goVersion string, cs []goComponent) error {
	t := &tally{part: part, start: time.Now()}
	for _, c := range cs {
		for _, bin := range c.r.binaries {
			if _, ok, err := b.lookup(b.key(c.name, c.r, c.version, goVersion, bin)); err != nil {
				return err
			} else if !ok {
				t.total++
			}
		}
	}
	b.tally = t
	return nil
}

// compiling reports a program starting.
func (b *Builder) compiling(component, binary string) {
	if t := b.tally; t != nil {
		b.Log.Info("progress", "part", t.part, "component", component, "binary", binary,
			"done", t.done, "total", t.total, "elapsed", time.Since(t.start).Round(time.Second).Seconds())
	}
}

// compiled counts a program done, and returns the count for its
// "built" event.
func (b *Builder) compiled() []any {
	t := b.tally
	if t == nil {
		return nil
	}
	t.done++
	return []any{"done", t.done, "total", t.total}
}

// lookup is the cache's Lookup of a program, remembered for the build:
// counting what is missing and then building it verify each cached
// program's digest once.
func (b *Builder) lookup(key string) (string, bool, error) {
	b.mu.Lock()
	path, seen := b.found[key]
	b.mu.Unlock()
	if seen {
		return path, true, nil
	}
	path, ok, err := b.Cache.Lookup("kit", key)
	if ok {
		b.mu.Lock()
		if b.found == nil {
			b.found = map[string]string{}
		}
		b.found[key] = path
		b.mu.Unlock()
	}
	return path, ok, err
}
