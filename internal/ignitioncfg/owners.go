package ignitioncfg

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/coreos/ignition/v2/config/v3_5/types"
)

// owners are the root's users and groups, by name, from its own
// /etc/passwd and /etc/group (never the build host's).
type owners struct {
	etc    string
	users  map[string]int
	groups map[string]int
}

func readOwners(etc string) (*owners, error) {
	o := &owners{etc: etc}
	var err error
	if o.users, err = readIDs(filepath.Join(etc, "passwd")); err != nil {
		return nil, err
	}
	if o.groups, err = readIDs(filepath.Join(etc, "group")); err != nil {
		return nil, err
	}
	return o, nil
}

// reload reads the files again after users were added.
func (o *owners) reload() error {
	n, err := readOwners(o.etc)
	if err == nil {
		*o = *n
	}
	return err
}

// readIDs maps the names in a passwd or group file to their ids.
func readIDs(path string) (map[string]int, error) {
	ids := map[string]int{}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return ids, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 3 {
			continue
		}
		if id, err := strconv.Atoi(fields[2]); err == nil {
			ids[fields[0]] = id
		}
	}
	return ids, sc.Err()
}

// chown sets a node's owner and group when the config names them.
func (t *Target) chown(p string, n types.Node, o *owners, link bool) error {
	uid, gid := -1, -1
	if n.User.ID != nil {
		uid = *n.User.ID
	} else if n.User.Name != nil {
		id, ok := o.users[*n.User.Name]
		if !ok {
			return fmt.Errorf("user %q does not exist", *n.User.Name)
		}
		uid = id
	}
	if n.Group.ID != nil {
		gid = *n.Group.ID
	} else if n.Group.Name != nil {
		id, ok := o.groups[*n.Group.Name]
		if !ok {
			return fmt.Errorf("group %q does not exist", *n.Group.Name)
		}
		gid = id
	}
	if uid == -1 && gid == -1 {
		return nil
	}
	if link {
		return os.Lchown(p, uid, gid)
	}
	return os.Chown(p, uid, gid)
}
