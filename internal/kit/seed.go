package kit

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/nodebake/nodebake/internal/containerdroot"
	"github.com/nodebake/nodebake/internal/manifest"
)

// Seeded are the archives whose images are already in containerd when a
// node first boots: the node's and the workloads', which every node runs.
// The build imports and unpacks them with the kit's containerd into the
// image's /var/lib/containerd (containerdroot), and marks them imported as
// import-images would, so that their units find every image present and
// the kubelet waits on no import. The archives stay in the image: a node
// whose state partition lost them (or a new root's other images) imports
// them again. The control plane's images, which a worker never runs, are
// imported on a control plane only.
var Seeded = []string{manifest.ArchiveNode, manifest.ArchiveWorkloads}

// ContainerdRoot is containerd's root folder on a node.
const ContainerdRoot = "/var/lib/containerd"

// ImportedDir holds import-images' marks, ARCHIVE.imported: a copy of the
// archive's list, written once its images reached the disk.
const ImportedDir = "/var/lib/nodebake/images"

// pinnedLabel keeps an image from the kubelet's image garbage collector;
// import-images sets it too.
const pinnedLabel = "io.cri-containerd.pinned=pinned"

// seed prepares containerd's root in the tree with the images of the
// Seeded archives, and writes their marks.
func (b *Builder) seed(ctx context.Context, t Tree, arts []Artifact, archives []Archive) error {
	req := containerdroot.Request{Labels: []string{pinnedLabel}, Epoch: b.Epoch}
	for _, a := range arts {
		switch a.Name {
		case "containerd":
			req.Containerd = a.Path
		case "ctr":
			req.Ctr = a.Path
		}
	}
	if req.Containerd == "" || req.Ctr == "" {
		return fmt.Errorf("the kit has no containerd and ctr to prepare containerd's root with")
	}
	var lists []Archive
	for _, a := range archives {
		if slices.Contains(Seeded, a.Name) {
			req.Archives = append(req.Archives, a.Path)
			lists = append(lists, a)
		}
	}
	if len(req.Archives) == 0 {
		return nil
	}
	start := time.Now()
	dst := t.Path(ContainerdRoot)
	// An empty folder from a package is replaced; anything in it is not.
	if err := os.Remove(dst); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("preparing %s: %w", ContainerdRoot, err)
	}
	if err := containerdroot.Prepare(ctx, b.Run, dst, req); err != nil {
		return fmt.Errorf("preparing %s: %w", ContainerdRoot, err)
	}
	for _, a := range lists {
		if err := t.WriteFile(ImportedDir+"/"+a.Name+".imported", archiveList(a), 0o644, "kit:images"); err != nil {
			return err
		}
	}
	b.Log.Info("prepared containerd's root", "archives", len(req.Archives), "seconds", time.Since(start).Round(10*time.Millisecond).Seconds())
	return nil
}
