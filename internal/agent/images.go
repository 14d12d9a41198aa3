package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nodebake/nodebake/internal/command"
	"github.com/nodebake/nodebake/internal/kubeadm"
	"github.com/nodebake/nodebake/internal/manifest"
	"github.com/nodebake/nodebake/internal/rootpath"
)

// Runtime is the container runtime's side of the node.
type Runtime interface {
	// ImportImages has each baked archive of images (manifest.Archive*)
	// imported into the container runtime, and returns once they are
	// all there at their digests.
	ImportImages(ctx context.Context, archives []string) error
	// QueueImport has each archive's import started, or started again
	// after a failure, and returns at once.
	QueueImport(ctx context.Context, archives []string) error
}

// archivesFor are the baked archives a node of role runs images from: a
// control plane's static pods need the control plane's, a worker never.
func archivesFor(role kubeadm.Role) []string {
	if role == kubeadm.RoleJoin {
		return []string{manifest.ArchiveNode, manifest.ArchiveWorkloads}
	}
	return slices.Clone(manifest.Archives)
}

// images has the images this node's role runs imported before the
// kubelet needs them. The node's and the workloads' archives are being
// imported since boot, one after the other (nodebake-images.service and
// nodebake-images-workloads.service, which the agent does not wait for
// to start).
//
// A control plane waits for its images here, before kubeadm: init's
// preflight checks every image kubeadm lists, CoreDNS's among them, and
// its static pods need the control plane's (imported now, beside the
// others).
//
// A worker does not wait: kubeadm join's discovery and preflight need no
// image, and the kubelet it starts requires the node's import and is
// ordered after it (kubelet.service), so the join runs beside the import
// and the kubelet starts the moment the node's images are in; the
// workloads' follow while it registers, and the node is Ready only once
// they are in (nodebake-cni.service). The imports are only queued here
// (started again if one failed); the imported phase checks their result
// once the join is over.
func (a *Agent) images(ctx context.Context) error {
	archives := archivesFor(a.run.kubeCfg.Role)
	if a.run.kubeCfg.Role == kubeadm.RoleJoin {
		if err := a.Node.QueueImport(ctx, archives); err != nil {
			return importFailed(archives, err)
		}
		return nil
	}
	if err := a.Node.ImportImages(ctx, archives); err != nil {
		return importFailed(archives, err)
	}
	a.markImports(ctx, archives)
	return nil
}

// imported is the phase after kubeadm: a worker's imports, queued by the
// images phase and run beside the join, are in. A join that succeeded had
// its kubelet wait for the node's, so this waits at most for the
// workloads' and records when each ended. It is its own phase so that a
// power cut here never joins again.
func (a *Agent) imported(ctx context.Context) error {
	if a.run.kubeCfg.Role != kubeadm.RoleJoin {
		return nil
	}
	archives := archivesFor(a.run.kubeCfg.Role)
	if err := a.Node.ImportImages(ctx, archives); err != nil {
		return importFailed(archives, err)
	}
	a.markImports(ctx, archives)
	return nil
}

// joinFailed is the error of a worker's failed join: the import's when
// the import failed too (the kubelet, which requires it, never started;
// the class then tells what to fix), else the join's.
func (a *Agent) joinFailed(ctx context.Context, joinErr error) error {
	archives := archivesFor(a.run.kubeCfg.Role)
	if err := a.Node.ImportImages(ctx, archives); err != nil {
		a.Log.Warn("kubeadm join failed", "error", kubeadm.Reason(joinErr))
		return importFailed(archives, err)
	}
	return joinErr
}

func importFailed(archives []string, err error) error {
	return fmt.Errorf("%w: importing the baked images (%s): %v", kubeadm.ErrImagesMissing, strings.Join(archives, ", "), err)
}

// markImports records when each archive's import finished.
func (a *Agent) markImports(ctx context.Context, archives []string) {
	for _, archive := range archives {
		name, unit := MilestoneImages, manifest.ImportUnit(archive)
		switch archive {
		case manifest.ArchiveWorkloads:
			name = MilestoneImagesWorkloads
		case manifest.ArchiveControlPlane:
			name = MilestoneImagesControlPlane
		}
		if at, err := a.Node.UnitActiveSince(ctx, unit); err != nil {
			a.Log.Warn("milestone unknown", "name", name, "unit", unit, "error", err)
		} else if at > 0 {
			a.mark(name, at)
		}
	}
}

// ImportImages starts each archive's import unit and waits for them.
func (n *LiveNode) ImportImages(ctx context.Context, archives []string) error {
	return n.startImports(ctx, archives)
}

// QueueImport queues each archive's import unit's start.
func (n *LiveNode) QueueImport(ctx context.Context, archives []string) error {
	return n.startImports(ctx, archives, "--no-block")
}

// startImports runs systemctl start, with flags, on each archive's
// import unit.
func (n *LiveNode) startImports(ctx context.Context, archives []string, flags ...string) error {
	args := append(append([]string{"start"}, flags...), "--")
	for _, a := range archives {
		args = append(args, manifest.ImportUnit(a))
	}
	_, err := n.Run.Run(ctx, command.Cmd{Name: "systemctl", Args: args})
	return err
}

// bakedImages are the references of every image the node's image bakes,
// from the lists beside its archives.
func bakedImages(root string) ([]string, error) {
	lists, err := filepath.Glob(filepath.Join(rootpath.Join(root, manifest.ImagesDir), "*.list"))
	if err != nil {
		return nil, err
	}
	var refs []string
	for _, l := range lists {
		data, err := os.ReadFile(l)
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) > 0 {
				refs = append(refs, f[0])
			}
		}
	}
	return refs, nil
}
