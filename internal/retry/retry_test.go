package retry

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDo(t *testing.T) {
	p := Policy{Deadline: time.Second, First: time.Millisecond, Max: 4 * time.Millisecond}
	n := 0
	if err := Do(context.Background(), p, func(context.Context) error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	}); err != nil || n != 3 {
		t.Errorf("err %v after %d attempts", err, n)
	}
	stop := errors.New("stop")
	n = 0
	if err := Do(context.Background(), p, func(context.Context) error { n++; return Final(stop) }); err != stop || n != 1 {
		t.Errorf("final: %v after %d attempts", err, n)
	}
	p.Deadline = 20 * time.Millisecond
	err := Do(context.Background(), p, func(context.Context) error { return errors.New("down") })
	if err == nil || !strings.Contains(err.Error(), "gave up after") || !strings.Contains(err.Error(), "down") {
		t.Errorf("deadline: %v", err)
	}
}
