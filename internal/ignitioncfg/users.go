package ignitioncfg

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/coreos/ignition/v2/config/v3_5/types"

	"github.com/nodebake/nodebake/internal/atomicfile"
	"github.com/nodebake/nodebake/internal/command"
)

// passwdEntry is one line of /etc/passwd.
type passwdEntry struct {
	name     string
	uid, gid int
	home     string
}

func (t *Target) lookupUser(name string) (*passwdEntry, error) {
	data, err := os.ReadFile(t.host("/etc/passwd"))
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) >= 7 && f[0] == name {
			uid, _ := strconv.Atoi(f[2])
			gid, _ := strconv.Atoi(f[3])
			return &passwdEntry{name: name, uid: uid, gid: gid, home: f[5]}, nil
		}
	}
	return nil, nil
}

// shadow runs a shadow-utils program on the target: with --prefix when it
// is not the running system, so that the program edits the target's files
// without chrooting into it.
func (t *Target) shadow(ctx context.Context, name string, args ...string) error {
	if t.Root != "/" {
		args = append([]string{"--prefix", t.Root}, args...)
	}
	_, err := t.Run.Run(ctx, command.Cmd{Name: name, Args: args})
	return err
}

// user creates or changes a user, sets its password hash and its SSH keys.
func (t *Target) user(ctx context.Context, u types.PasswdUser) error {
	cur, err := t.lookupUser(u.Name)
	if err != nil {
		return err
	}
	if u.ShouldExist != nil && !*u.ShouldExist {
		if cur == nil {
			return nil
		}
		return t.shadow(ctx, "userdel", u.Name)
	}
	var args []string
	if u.UID != nil {
		args = append(args, "--uid", strconv.Itoa(*u.UID))
	}
	if u.Gecos != nil {
		args = append(args, "--comment", *u.Gecos)
	}
	if u.HomeDir != nil {
		args = append(args, "--home-dir", *u.HomeDir)
	}
	if u.PrimaryGroup != nil {
		args = append(args, "--gid", *u.PrimaryGroup)
	}
	if u.Shell != nil {
		args = append(args, "--shell", *u.Shell)
	}
	if len(u.Groups) > 0 {
		var gs []string
		for _, g := range u.Groups {
			gs = append(gs, string(g))
		}
		args = append(args, "--groups", strings.Join(gs, ","))
	}
	if cur == nil {
		if !boolOf(u.NoCreateHome) {
			args = append(args, "--create-home")
		}
		if boolOf(u.NoUserGroup) {
			args = append(args, "--no-user-group")
		} else if u.PrimaryGroup == nil {
			args = append(args, "--user-group")
		}
		if boolOf(u.System) {
			args = append(args, "--system")
		}
		if boolOf(u.NoLogInit) {
			args = append(args, "--no-log-init")
		}
		if err := t.shadow(ctx, "useradd", append(args, u.Name)...); err != nil {
			return err
		}
	} else if len(args) > 0 {
		if len(u.Groups) > 0 {
			args = append(args, "--append")
		}
		if err := t.shadow(ctx, "usermod", append(args, u.Name)...); err != nil {
			return err
		}
	}
	if u.PasswordHash != nil {
		if err := t.setPasswordHash(u.Name, *u.PasswordHash); err != nil {
			return err
		}
	}
	if len(u.SSHAuthorizedKeys) > 0 {
		return t.authorizedKeys(u)
	}
	return nil
}

// setPasswordHash writes the hash into /etc/shadow itself: it never goes
// on a command line, where the process list and logs would show it.
func (t *Target) setPasswordHash(name, hash string) error {
	if strings.ContainsAny(hash, ":\n") {
		return errors.New("passwordHash holds ':' or a newline")
	}
	p := t.host("/etc/shadow")
	data, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	found := false
	for i, l := range lines {
		f := strings.Split(l, ":")
		if len(f) >= 2 && f[0] == name {
			f[1] = hash
			lines[i] = strings.Join(f, ":")
			found = true
		}
	}
	if !found {
		return fmt.Errorf("%s has no line for %s", p, name)
	}
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	return atomicfile.Write(p, []byte(strings.Join(lines, "\n")+"\n"), fi.Mode().Perm())
}

// authorizedKeys writes the user's ~/.ssh/authorized_keys (0600, in a
// 0700 folder, owned by the user).
func (t *Target) authorizedKeys(u types.PasswdUser) error {
	e, err := t.lookupUser(u.Name)
	if err != nil {
		return err
	}
	if e == nil {
		return fmt.Errorf("user %s does not exist", u.Name)
	}
	var b strings.Builder
	b.WriteString("# Written by nodebake firstboot from the Ignition config.\n")
	for _, k := range u.SSHAuthorizedKeys {
		b.WriteString(strings.TrimSpace(string(k)) + "\n")
	}
	dir := filepath.Join(t.host(e.home), ".ssh")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chown(dir, e.uid, e.gid); err != nil {
		return err
	}
	p := filepath.Join(dir, "authorized_keys")
	if err := atomicfile.Write(p, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Chown(p, e.uid, e.gid)
}
