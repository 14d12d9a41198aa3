// Package nodecheck decides whether a node's Ignition config will work on
// a target, before anything is written: the config and its report, the
// kubeadm configuration in it, and against the target, its Kubernetes
// version, kubeadm's own validation and every image kubeadm will need.
//
// The rule is written once, against Target, which has two
// implementations: the live node the agent runs on (agent.LiveNode), and
// an image read offline (Image, for `firstboot validate --image`).
package nodecheck

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nodebake/nodebake/internal/atomicfile"
	"github.com/nodebake/nodebake/internal/capi"
	"github.com/nodebake/nodebake/internal/diskimage"
	"github.com/nodebake/nodebake/internal/ignitioncfg"
	"github.com/nodebake/nodebake/internal/kubeadm"
)

// ErrNoKubeadm is returned for a config that writes no kubeadm
// configuration.
var ErrNoKubeadm = errors.New("the Ignition config has no kubeadm configuration at " + kubeadm.ConfigPath +
	" (nor Cluster API's " + capi.ConfigPath + ", " + capi.ScriptPath + " and " + capi.Unit + ")")

// ErrNotImage is wrapped when --image names a file that is not a nodebake
// disk image.
var ErrNotImage = diskimage.ErrNotImage

// ErrNoImages is returned for a target whose kubeadm lists no images: a
// kubeadm that says nothing is needed cannot vouch for what is baked.
var ErrNoImages = errors.New("the image's kubeadm lists no images")

// Target is where a config is to run.
type Target interface {
	// BakedVersion is the Kubernetes version the target's kit carries.
	BakedVersion(ctx context.Context) (string, error)
	// ValidateKubeadm runs the target's kubeadm config validate on the
	// file at path.
	ValidateKubeadm(ctx context.Context, path string) error
	// MissingImages are the images the target's kubeadm needs for
	// version that the target does not have.
	MissingImages(ctx context.Context, version string) ([]string, error)
}

// Input is one check.
type Input struct {
	Config []byte
	Fetch  *ignitioncfg.Fetcher // reads the kubeadm file's contents
	// Target is checked against; nil checks the config alone.
	Target Target
	// Scratch is a private folder for the copy of the kubeadm file that
	// the target's kubeadm validates.
	Scratch string
}

// Result is what a check learnt: the Ignition report's warnings, the
// parsed configs, and a one-line summary.
type Result struct {
	Problems []ignitioncfg.Problem
	Config   ignitioncfg.Config
	// Kubeadm is the kubeadm configuration, once it parsed: set even
	// when the check against the target failed.
	Kubeadm *kubeadm.Config
	// KubeadmPath is where the config writes it: kubeadm.ConfigPath, or
	// capi.ConfigPath for a config that carries Cluster API's contract.
	KubeadmPath string
	KubeadmYAML []byte
	// Template is set for a Cluster API kubeadm configuration with
	// ${VARIABLES} that its preKubeadmCommands fill in (Cluster API's
	// Flatcar templates do, with envsubst): kubeadm cannot validate it
	// before then, so the node checks it again once filled in.
	Template bool
	// CAPI is Cluster API's bootstrap contract, for a config that
	// carries it.
	CAPI    *capi.Bootstrap
	Summary string
}

// Check decides whether in.Config will work on in.Target.
func Check(ctx context.Context, in Input) (*Result, error) {
	res := &Result{}
	cfg, problems, err := ignitioncfg.Parse(in.Config)
	res.Problems = problems
	if err != nil {
		return res, err
	}
	if p := ignitioncfg.Check(cfg); len(p) > 0 {
		return res, &ignitioncfg.InvalidError{Problems: p}
	}
	res.Config = cfg
	// Data URLs need no network: whatever would fail to decode or to
	// match its hash on the node fails here.
	if p := in.Fetch.CheckData(ctx, cfg); len(p) > 0 {
		return res, &ignitioncfg.InvalidError{Problems: p}
	}
	bs, err := capi.Find(cfg, func(f ignitioncfg.File) ([]byte, error) { return in.Fetch.Contents(ctx, f, nil) })
	if err != nil {
		return res, err
	}
	path := kubeadm.ConfigPath
	if bs != nil {
		path = capi.ConfigPath
	}
	var kubeYAML []byte
	found := false
	for i, f := range cfg.Storage.Files {
		if bs != nil && f.Path == kubeadm.ConfigPath {
			return res, &ignitioncfg.InvalidError{Problems: []ignitioncfg.Problem{{Kind: "error", Fatal: true,
				Path:    fmt.Sprintf("$.storage.files.%d.path", i),
				Message: fmt.Sprintf("the config carries Cluster API's bootstrap contract (%s) and writes %s too: give one kubeadm configuration", capi.ConfigPath, kubeadm.ConfigPath)}}}
		}
		if f.Path == path {
			// The file as written: its contents and every append.
			if kubeYAML, err = in.Fetch.Contents(ctx, f, nil); err != nil {
				return res, fmt.Errorf("%s: %w", path, err)
			}
			found = true
		}
	}
	if !found {
		return res, ErrNoKubeadm
	}
	kc, err := Kubeadm(ctx, nil, "", path, kubeYAML)
	res.Kubeadm, res.KubeadmYAML = kc, kubeYAML
	if err != nil {
		return res, err
	}
	if bs != nil && (bs.Subcommand == "init") != (kc.Role == kubeadm.RoleInit) {
		return res, fmt.Errorf("%w: %s runs kubeadm %s, but %s is for %s", kubeadm.ErrInvalidConfig, capi.ScriptPath, bs.Subcommand, capi.ConfigPath, kc.Role)
	}
	res.KubeadmPath, res.CAPI = path, bs
	res.Summary = fmt.Sprintf("role %s", kc.Role)
	if bs != nil {
		res.Summary += ", Cluster API bootstrap"
	}
	if kc.KubernetesVersion != "" {
		res.Summary += ", Kubernetes " + kc.KubernetesVersion
	}
	res.Template = bs != nil && bs.Pre != "" && strings.Contains(string(kubeYAML), "${")
	if res.Template {
		res.Summary += "; " + path + " is a template for the preKubeadmCommands: kubeadm validates it on the node once they filled it in"
	}
	if in.Target == nil {
		return res, nil
	}
	return res, against(ctx, in.Target, in.Scratch, kc, kubeYAML, !res.Template)
}

// Kubeadm checks a kubeadm configuration, read from path, as Check checks
// the one in an Ignition config: it parses, an init pins its version,
// and on target (unless nil) the version fits, kubeadm validates it and
// every image it needs is there. The configuration is returned once it
// parsed, even when a later check failed.
func Kubeadm(ctx context.Context, target Target, scratch, path string, kubeYAML []byte) (*kubeadm.Config, error) {
	kc, err := kubeadm.ParseConfig(kubeYAML)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", kubeadm.ErrInvalidConfig, path, err)
	}
	if kc.Role == kubeadm.RoleInit && kc.KubernetesVersion == "" {
		// Whatever the target: unpinned, kubeadm asks the internet.
		return kc, fmt.Errorf("%w: an init must pin kubernetesVersion (ClusterConfiguration), or kubeadm asks the internet", kubeadm.ErrVersionMismatch)
	}
	if target == nil {
		return kc, nil
	}
	return kc, against(ctx, target, scratch, kc, kubeYAML, true)
}

// against checks the kubeadm configuration on the target; kubeadm
// validates it too unless validate is false.
func against(ctx context.Context, target Target, scratch string, kc *kubeadm.Config, kubeYAML []byte, validate bool) error {
	baked, err := target.BakedVersion(ctx)
	if err != nil {
		return err
	}
	if err := VersionFits(kc, baked); err != nil {
		return err
	}
	if validate {
		if err := validateFile(ctx, target, scratch, kubeYAML); err != nil {
			return err
		}
	}
	missing, err := target.MissingImages(ctx, baked)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", kubeadm.ErrImagesMissing, strings.Join(missing, ", "))
	}
	return nil
}

// VersionFits is the one version rule: an init must pin the image's
// version (unpinned, kubeadm asks the internet); a join, worker or
// control plane, takes the cluster's, unless its config names one.
func VersionFits(kc *kubeadm.Config, baked string) error {
	if (kc.Role == kubeadm.RoleInit || kc.KubernetesVersion != "") && kc.KubernetesVersion != baked {
		return fmt.Errorf("%w: the config says %q, the image has %s; pin kubernetesVersion: %s",
			kubeadm.ErrVersionMismatch, kc.KubernetesVersion, baked, baked)
	}
	return nil
}

// validateFile has the target's kubeadm validate the file where it will
// be read: a private copy, since nothing is applied yet.
func validateFile(ctx context.Context, target Target, scratch string, kubeYAML []byte) error {
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		return err
	}
	tmp := filepath.Join(scratch, "kubeadm-validate.yaml")
	if err := atomicfile.Write(tmp, kubeYAML, 0o600); err != nil {
		return err
	}
	defer os.Remove(tmp)
	return target.ValidateKubeadm(ctx, tmp)
}
