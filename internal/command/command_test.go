package command

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
)

// A program the agent runs never inherits the agent's notify socket, or
// systemd would see it speak for the agent's unit (and refuse it).
func TestChildrenDoNotInheritNotifySocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "/run/systemd/notify")
	t.Setenv("NODEBAKE_TEST_KEPT", "yes")
	out, err := (&Runner{}).Run(context.Background(), Cmd{Name: "env", Env: []string{"ADDED=1"}})
	if err != nil {
		t.Fatal(err)
	}
	env := string(out)
	if strings.Contains(env, "NOTIFY_SOCKET=") {
		t.Errorf("the child saw NOTIFY_SOCKET:\n%s", env)
	}
	for _, want := range []string{"NODEBAKE_TEST_KEPT=yes", "ADDED=1"} {
		if !strings.Contains(env, want+"\n") {
			t.Errorf("the child's environment lacks %s", want)
		}
	}
}

// One writer given for both streams gets all of both, in the order the
// program wrote them (run with -race too).
func TestOneWriterForBothStreams(t *testing.T) {
	var out, want bytes.Buffer
	script := "for i in $(seq 200); do echo out$i; echo err$i >&2; done"
	if _, err := (&Runner{}).Run(context.Background(), Cmd{Name: "sh", Args: []string{"-c", script}, Stdout: &out, Stderr: &out}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 200; i++ {
		fmt.Fprintf(&want, "out%d\nerr%d\n", i, i)
	}
	if out.String() != want.String() {
		t.Errorf("got, out of order or short:\n%s", out.String())
	}
}
