package profile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nodebake/nodebake/internal/diskimage"
	"github.com/nodebake/nodebake/internal/profile"
)

// FuzzProfile: decoding and validating never panic, and every profile
// they accept lays out a disk whose partitions follow one another inside
// it, with no offset overflowing.
func FuzzProfile(f *testing.F) {
	seeds, _ := filepath.Glob("../../profiles/*.yaml")
	more, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range append(seeds, more...) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("apiVersion: nodebake.dev/v1alpha1\nkind: Profile\nmetadata: {name: big}\nspec:\n  disk: {espSize: 4GiB, rootSize: 1TiB, stateSize: 16TiB}\n"))
	src := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p, errs := profile.Parse(data)
		if len(errs) > 0 {
			return
		}
		if errs := profile.Validate(p, src); len(errs) > 0 {
			return
		}
		s := p.DiskSizes()
		l := diskimage.Plan(p.Digest(), s.ESP, s.Root, s.State)
		end := int64(0)
		for _, part := range l.Partitions {
			if part.Size <= 0 || part.Start < end || part.Start+part.Size < part.Start {
				t.Fatalf("partition %s at %d, %d bytes, after %d: %+v", part.Name, part.Start, part.Size, end, s)
			}
			end = part.Start + part.Size
		}
		if l.Size < end || l.Size <= 0 {
			t.Fatalf("disk of %d bytes ends before its last partition at %d: %+v", l.Size, end, s)
		}
	})
}
