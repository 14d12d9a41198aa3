package kubeadm

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/nodebake/nodebake/internal/command"
)

// Error classes: how a kubeadm failure is reported and whether a retry
// can help.
var (
	// ErrUnreachable: the API server or etcd did not answer; retried.
	ErrUnreachable = errors.New("the control plane is unreachable")
	// ErrTokenExpired: the bootstrap token is expired or unknown; a
	// retry cannot help, a new token is needed.
	ErrTokenExpired = errors.New("the bootstrap token is expired or unknown")
	// ErrCertificateKeyExpired: the uploaded control-plane certificates
	// (kept 2 hours) are gone, or the key does not decrypt them.
	ErrCertificateKeyExpired = errors.New("the certificate key is expired or wrong")
	// ErrVersionMismatch: the config's kubernetesVersion is not the
	// image's.
	ErrVersionMismatch = errors.New("the kubeadm config's kubernetesVersion is not the image's")
	// ErrImagesMissing: an image kubeadm needs is not in containerd.
	ErrImagesMissing = errors.New("images kubeadm needs are missing")
	// ErrInvalidConfig: kubeadm config validate refused the config.
	ErrInvalidConfig = errors.New("kubeadm refused the config")
	// ErrCAMismatch: the cluster's CA is not the one the join config
	// pins (caCertHashes); a retry cannot help.
	ErrCAMismatch = errors.New("the cluster's CA does not match the pinned caCertHashes")
	// ErrPreflight: kubeadm's preflight checks failed; the node is not
	// fit (CPUs, memory, ports, files), and a retry cannot help.
	ErrPreflight = errors.New("kubeadm's preflight checks failed")
)

// Class is an error's class name for the status record and the journal.
func Class(err error) string {
	for _, c := range []struct {
		err  error
		name string
	}{
		{ErrUnreachable, "control-plane-unreachable"},
		{ErrTokenExpired, "token-expired"},
		{ErrCertificateKeyExpired, "certificate-key-expired"},
		{ErrVersionMismatch, "version-mismatch"},
		{ErrImagesMissing, "images-missing"},
		{ErrInvalidConfig, "invalid-kubeadm-config"},
		{ErrCAMismatch, "ca-mismatch"},
		{ErrPreflight, "preflight"},
	} {
		if errors.Is(err, c.err) {
			return c.name
		}
	}
	return ""
}

// Runner runs a program: a command.Runner on the node, a
// sandbox.Sandbox for an image's kubeadm on a host that only checks.
type Runner interface {
	Run(context.Context, command.Cmd) ([]byte, error)
}

var _ Runner = (*command.Runner)(nil)

// Kubeadm runs the image's kubeadm. Its output is redacted of Secrets
// (and anything shaped like a bootstrap token or certificate key) before
// it reaches an error or a log.
type Kubeadm struct {
	Run Runner
	// Bin is the program: "kubeadm" on PATH when empty.
	Bin     string
	Secrets []string
}

var (
	tokenRE = regexp.MustCompile(`\b[a-z0-9]{6}\.[a-z0-9]{16}\b`)
	// The key may be on the next line: kubeadm's upload-certs prints
	// "Using certificate key:", then the key alone on a line.
	certKeyRE = regexp.MustCompile(`(?i)(certificate[-_ ]?key[=: "\s]*)[0-9a-f]{64}`)
)

// Redact hides secrets in s.
func Redact(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	s = tokenRE.ReplaceAllString(s, "[redacted-token]")
	return certKeyRE.ReplaceAllString(s, "${1}[redacted-key]")
}

// RedactError is err with secrets and anything shaped like a bootstrap
// token or certificate key redacted from its text; errors.Is and As see
// through it to err.
func RedactError(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	return &redacted{msg: Redact(err.Error(), secrets), err: err}
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }

func (k *Kubeadm) run(ctx context.Context, args ...string) (string, error) {
	bin := k.Bin
	if bin == "" {
		bin = "kubeadm"
	}
	out, err := k.Run.Run(ctx, command.Cmd{Name: bin, Args: args})
	text := Redact(string(out), k.Secrets)
	if err != nil {
		msg := Redact(err.Error(), k.Secrets)
		return text, &Failure{Args: args[:min(2, len(args))], Output: msg, class: classify(msg)}
	}
	return text, nil
}

// Failure is a failed kubeadm command, its redacted output and class.
type Failure struct {
	Args   []string
	Output string
	class  error
}

func (f *Failure) Error() string {
	return fmt.Sprintf("kubeadm %s: %s", strings.Join(f.Args, " "), f.Output)
}

func (f *Failure) Unwrap() error { return f.class }

// Reason is the line of a kubeadm failure that says why, for a log line
// or the console: kubeadm's last message, not its advice to rerun with
// --v=5. Failures are already redacted.
func Reason(err error) string {
	var f *Failure
	if !errors.As(err, &f) {
		return firstLine(err.Error())
	}
	lines := strings.Split(strings.TrimSpace(f.Output), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "To see the stack trace") {
			continue
		}
		if len(l) > 300 {
			l = l[:300] + "…"
		}
		return l
	}
	return f.Error()
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// classify maps kubeadm's messages to a class.
func classify(out string) error {
	o := strings.ToLower(out)
	switch {
	case strings.Contains(o, "[preflight] some fatal errors occurred"):
		return ErrPreflight
	case strings.Contains(o, "could not find a jws signature"),
		strings.Contains(o, "token id") && strings.Contains(o, "not found"),
		strings.Contains(o, "token") && strings.Contains(o, "expired"):
		return ErrTokenExpired
	case strings.Contains(o, `secrets "kubeadm-certs" not found`),
		strings.Contains(o, "kubeadm-certs") && strings.Contains(o, "not found"),
		strings.Contains(o, "error decoding certificate key"),
		strings.Contains(o, "message authentication failed"):
		return ErrCertificateKeyExpired
	case strings.Contains(o, "none of the public keys") && strings.Contains(o, "pinned"):
		return ErrCAMismatch
	case strings.Contains(o, "connection refused"), strings.Contains(o, "i/o timeout"),
		strings.Contains(o, "no route to host"), strings.Contains(o, "network is unreachable"),
		strings.Contains(o, "context deadline exceeded"), strings.Contains(o, "tls handshake timeout"),
		strings.Contains(o, "couldn't validate the identity of the api server"),
		strings.Contains(o, "connection reset"), strings.Contains(o, "unexpected eof"):
		return ErrUnreachable
	}
	return nil
}

// Version is the image's kubeadm's own version.
func (k *Kubeadm) Version(ctx context.Context) (string, error) {
	out, err := k.run(ctx, "version", "-o", "short")
	return strings.TrimSpace(out), err
}

// Validate runs kubeadm config validate on the file.
func (k *Kubeadm) Validate(ctx context.Context, path string) error {
	if _, err := k.run(ctx, "config", "validate", "--config", path); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

// Images lists the images kubeadm needs for version.
func (k *Kubeadm) Images(ctx context.Context, version string) ([]string, error) {
	out, err := k.run(ctx, "config", "images", "list", "--kubernetes-version", version)
	if err != nil {
		return nil, err
	}
	return strings.Fields(out), nil
}

// Init runs kubeadm init, uploading the control-plane certificates when
// the config sets a certificate key.
func (k *Kubeadm) Init(ctx context.Context, path string, uploadCerts bool) (string, error) {
	args := []string{"init", "--config", path}
	if uploadCerts {
		args = append(args, "--upload-certs")
	}
	return k.run(ctx, args...)
}

// InitPhase runs one phase of kubeadm init with the config: "upload-config
// all", "addon all" and so on, each with its own flags.
func (k *Kubeadm) InitPhase(ctx context.Context, path string, phase ...string) error {
	_, err := k.run(ctx, append(append([]string{"init", "phase"}, phase...), "--config", path)...)
	return err
}

// Join runs kubeadm join; the config says whether as a control-plane node.
func (k *Kubeadm) Join(ctx context.Context, path string) (string, error) {
	return k.run(ctx, "join", "--config", path)
}

// Reset undoes a partial init or join.
func (k *Kubeadm) Reset(ctx context.Context) error {
	_, err := k.run(ctx, "reset", "--force")
	return err
}
