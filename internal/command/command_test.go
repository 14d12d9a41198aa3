package command

import (
	"context"
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
