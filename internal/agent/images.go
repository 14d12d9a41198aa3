package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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
}

// archivesFor are the baked archives a node of role runs images from: a
// control plane's static pods need the control plane's, a worker never.
func archivesFor(role kubeadm.Role) []string {
	if role == kubeadm.RoleJoin {
		return []string{manifest.ArchiveNode}
	}
	return []string{manifest.ArchiveNode, manifest.ArchiveControlPlane}
}

// images has the images this node's role runs imported before kubeadm
// needs them. The node's archive is being imported since boot
// (nodebake-images.service, which the agent does not wait for to start):
// asking for it waits for that import, or retries one that failed; a
// control plane's is imported now, beside it.
func (a *Agent) images(ctx context.Context) error {
	archives := archivesFor(a.run.kubeCfg.Role)
	if err := a.Node.ImportImages(ctx, archives); err != nil {
		return fmt.Errorf("%w: importing the baked images (%s): %v", kubeadm.ErrImagesMissing, strings.Join(archives, ", "), err)
	}
	a.markImports(ctx, archives)
	return nil
}

// markImports records when each archive's import finished.
func (a *Agent) markImports(ctx context.Context, archives []string) {
	for _, archive := range archives {
		name, unit := MilestoneImages, manifest.ImportUnit(archive)
		if archive == manifest.ArchiveControlPlane {
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
	args := []string{"start", "--"}
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
