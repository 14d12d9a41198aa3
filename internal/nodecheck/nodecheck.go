// Package nodecheck checks a node's Ignition config offline: the config,
// the kubeadm configuration in it, and, given the image, that the image's
// own kubeadm accepts it and the image bakes what it needs.
package nodecheck

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/diskimage"
	"github.com/nodebake/nodebake/internal/ignitioncfg"
	"github.com/nodebake/nodebake/internal/kubeadm"
	"github.com/nodebake/nodebake/internal/manifest"
)

// Report is what a check found: warnings from the Ignition report, and a
// one-line summary when the config is valid.
type Report struct {
	Problems []ignitioncfg.Problem
	Summary  string
}

// Check validates raw, and with image (a raw nodebake image), checks it
// against the image.
func Check(ctx context.Context, raw []byte, image string) (*Report, error) {
	rep := &Report{}
	cfg, problems, err := ignitioncfg.Parse(raw)
	rep.Problems = problems
	if err != nil {
		return rep, err
	}
	if p := ignitioncfg.Check(cfg); len(p) > 0 {
		return rep, &ignitioncfg.InvalidError{Problems: p}
	}
	var kubeYAML []byte
	fetch := &ignitioncfg.Fetcher{Deadline: 10 * time.Second}
	for _, f := range cfg.Storage.Files {
		if f.Path == kubeadm.ConfigPath {
			if kubeYAML, err = fetch.Fetch(ctx, f.Contents); err != nil {
				return rep, fmt.Errorf("%s: %w", kubeadm.ConfigPath, err)
			}
		}
	}
	if kubeYAML == nil {
		return rep, &ignitioncfg.InvalidError{Problems: []ignitioncfg.Problem{{Kind: "error", Path: "$.storage.files",
			Message: "no file writes the kubeadm configuration at " + kubeadm.ConfigPath, Fatal: true}}}
	}
	kc, err := kubeadm.ParseConfig(kubeYAML)
	if err != nil {
		return rep, &ignitioncfg.InvalidError{Problems: []ignitioncfg.Problem{{Kind: "error", Path: kubeadm.ConfigPath, Message: err.Error(), Fatal: true}}}
	}
	rep.Summary = fmt.Sprintf("role %s", kc.Role)
	if kc.KubernetesVersion != "" {
		rep.Summary += ", Kubernetes " + kc.KubernetesVersion
	}
	if image == "" {
		return rep, nil
	}
	return rep, againstImage(ctx, rep, kc, kubeYAML, image)
}

// againstImage runs the image's own kubeadm on the configuration.
func againstImage(ctx context.Context, rep *Report, kc *kubeadm.Config, kubeYAML []byte, image string) error {
	img, err := diskimage.Open(image)
	if err != nil {
		return err
	}
	defer img.Close()
	data, err := img.ReadRootFile(manifest.Path)
	if err != nil {
		return fmt.Errorf("%s: %w", image, err)
	}
	m, err := manifest.Parse(data)
	if err != nil {
		return err
	}
	if m.Kit == nil {
		return fmt.Errorf("%s has no Kubernetes kit", image)
	}
	if kc.Role != kubeadm.RoleJoin && kc.KubernetesVersion != m.Kit.KubernetesVersion {
		return fmt.Errorf("%w: the config says %q, %s bakes %s", kubeadm.ErrVersionMismatch, kc.KubernetesVersion, image, m.Kit.KubernetesVersion)
	}
	bin, err := img.ReadRootFile("/usr/bin/kubeadm")
	if err != nil {
		return fmt.Errorf("%s: reading its kubeadm: %w", image, err)
	}
	dir, err := os.MkdirTemp("", "nodebake-validate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	kubeadmPath, cfgPath := filepath.Join(dir, "kubeadm"), filepath.Join(dir, "kubeadm.yaml")
	if err := os.WriteFile(kubeadmPath, bin, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(cfgPath, kubeYAML, 0o600); err != nil {
		return err
	}
	run := &command.Runner{}
	if _, err := run.Run(ctx, command.Cmd{Name: kubeadmPath, Args: []string{"config", "validate", "--config", cfgPath}}); err != nil {
		return fmt.Errorf("%w: %s", kubeadm.ErrInvalidConfig, kubeadm.Redact(err.Error(), kc.Secrets))
	}
	rep.Summary += fmt.Sprintf("; %s's kubeadm accepts it", filepath.Base(image))
	if kc.Role == kubeadm.RoleJoin {
		return nil
	}
	out, err := run.Run(ctx, command.Cmd{Name: kubeadmPath, Args: []string{"config", "images", "list", "--config", cfgPath}})
	if err != nil {
		return fmt.Errorf("listing kubeadm's images: %s", kubeadm.Redact(err.Error(), kc.Secrets))
	}
	var baked []string
	for _, i := range m.Kit.Images {
		baked = append(baked, i.Ref)
	}
	var missing []string
	for _, ref := range strings.Fields(string(out)) {
		if !slices.Contains(baked, ref) {
			missing = append(missing, ref)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s does not bake %s", kubeadm.ErrImagesMissing, image, strings.Join(missing, ", "))
	}
	rep.Summary += fmt.Sprintf(" and bakes all %d images it needs", len(strings.Fields(string(out))))
	return nil
}
