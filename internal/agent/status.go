package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/nodebake/nodebake/internal/atomicfile"
)

// StatusPath is the agent's durable record, on the state partition.
const StatusPath = "/var/lib/nodebake/firstboot.json"

// Results.
const (
	ResultRunning      = "running"
	ResultSuccess      = "success"
	ResultFailed       = "failed"
	ResultUnconfigured = "unconfigured"
)

// Status is the durable record: what was done, how it ended, and where the
// config came from. It holds no secrets: no config, no token, no key.
type Status struct {
	SchemaVersion int       `json:"schemaVersion"`
	Result        string    `json:"result"`
	Phase         string    `json:"phase,omitempty"` // the phase running or failed
	Phases        []Phase   `json:"phases"`
	ErrorClass    string    `json:"errorClass,omitempty"`
	Error         string    `json:"error,omitempty"`
	Source        string    `json:"source,omitempty"`
	ConfigSHA256  string    `json:"configSHA256,omitempty"`
	Role          string    `json:"role,omitempty"`
	NodeName      string    `json:"nodeName,omitempty"`
	FirstStarted  time.Time `json:"firstStarted"`
	LastStarted   time.Time `json:"lastStarted"`
	Finished      time.Time `json:"finished,omitzero"`
	Runs          int       `json:"runs"`
	// Applied is the Ignition apply's record of finished operations
	// (paths and the sha256 of what was written).
	Applied map[string]string `json:"applied,omitempty"`
	// KubeadmStarted is set before kubeadm init or join first runs.
	KubeadmStarted bool `json:"kubeadmStarted,omitempty"`
	// KubeadmRuns counts the kubeadm inits and joins started, over every
	// boot: an init node that converged after a crash shows 1.
	KubeadmRuns int `json:"kubeadmRuns,omitempty"`
	// InitFinish is set when the agent finished an init kubeadm left
	// unfinished: why, and the phases it ran.
	InitFinish *InitFinish `json:"initFinish,omitempty"`
	// Succeeded is set once and never cleared: no second init, no reset.
	Succeeded bool `json:"succeeded,omitempty"`
	// Milestones are the points each run reached, in seconds since its
	// boot (milestones.go).
	Milestones []Milestone `json:"milestones,omitempty"`
}

// Phase is one finished phase: when it started (on the wall clock, and
// in seconds since the boot of the run that finished it), and how long
// it took.
type Phase struct {
	Name      string    `json:"name"`
	Started   time.Time `json:"started,omitzero"`
	SinceBoot float64   `json:"sinceBoot,omitempty"`
	Finished  time.Time `json:"finished"`
	Seconds   float64   `json:"seconds"`
}

// Done reports whether the named phase finished.
func (s *Status) Done(name string) bool {
	for _, p := range s.Phases {
		if p.Name == name {
			return true
		}
	}
	return false
}

// ReadStatus reads the record under root; a missing one is a new node.
func ReadStatus(root string) (*Status, error) {
	data, err := os.ReadFile(filepath.Join(root, StatusPath))
	if errors.Is(err, fs.ErrNotExist) {
		return &Status{SchemaVersion: 1}, nil
	}
	if err != nil {
		return nil, err
	}
	var s Status
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", StatusPath, err)
	}
	return &s, nil
}

// write stores the record atomically, readable by root only.
func (s *Status) write(root string) error {
	p := filepath.Join(root, StatusPath)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(p, append(data, '\n'), 0o600)
}
