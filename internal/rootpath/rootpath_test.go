package rootpath

import "testing"

func TestJoin(t *testing.T) {
	for _, c := range []struct{ root, p, want string }{
		{"/tmp/r", "/etc/hostname", "/tmp/r/etc/hostname"},
		{"/tmp/r", "etc/hostname", "/tmp/r/etc/hostname"},
		{"/tmp/r", "/", "/tmp/r"},
		{"/", "/etc/kubernetes/admin.conf", "/etc/kubernetes/admin.conf"},
		{"/tmp/r", "/var/../etc/x", "/tmp/r/etc/x"},
		{"/tmp/r", "/../../etc/passwd", "/tmp/r/etc/passwd"},
	} {
		if got := Join(c.root, c.p); got != c.want {
			t.Errorf("Join(%q, %q) = %q, want %q", c.root, c.p, got, c.want)
		}
	}
}
