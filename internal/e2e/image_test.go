package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
)

type inspectReport struct {
	Partitions []struct {
		Number int    `json:"number"`
		Name   string `json:"name"`
		Type   string `json:"type"`
		GUID   string `json:"guid"`
		Start  int64  `json:"start"`
		Size   int64  `json:"size"`
	} `json:"partitions"`
	OSRelease map[string]string `json:"osRelease"`
	Kernel    struct {
		Version string `json:"version"`
		Cmdline string `json:"cmdline"`
	} `json:"kernel"`
	Manifest struct {
		Name          string `json:"name"`
		ProfileDigest string `json:"profileDigest"`
		Packages      int    `json:"packages"`
		Files         int    `json:"files"`
	} `json:"manifest"`
	Sysctls      map[string]string `json:"sysctls"`
	Modules      []string          `json:"modules"`
	EnabledUnits []string          `json:"enabledUnits"`
	Kit          *struct {
		KubernetesVersion string `json:"kubernetesVersion"`
		Components        []struct {
			Name, Version, Path, SHA256 string
		} `json:"components"`
		Images []struct{ Ref, Digest, Source, Archive string } `json:"images"`
	} `json:"kit"`
}

func inspectImage(t testing.TB, raw string) inspectReport {
	t.Helper()
	r := run(t, "inspect", "--json", raw)
	if r.code != 0 {
		t.Fatalf("inspect exited %d: %s", r.code, r.stderr)
	}
	var rep inspectReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("inspect --json: %v\n%s", err, r.stdout)
	}
	return rep
}

// extract copies a partition's bytes out of the image, for tools that
// cannot read at an offset.
func extract(t *testing.T, raw string, start, size int64) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "part.img")
	tool(t, "dd", "if="+raw, "of="+dst, "bs=1M", "iflag=skip_bytes,count_bytes",
		fmt.Sprintf("skip=%d", start), fmt.Sprintf("count=%d", size), "conv=sparse", "status=none")
	return dst
}

func TestImageChecksWithStandardTools(t *testing.T) {
	out := testImage(t)
	raw := filepath.Join(out, "test.raw")
	rep := inspectImage(t, raw)
	part := map[string]int{}
	for i, p := range rep.Partitions {
		part[p.Name] = i
	}

	t.Run("sgdisk", func(t *testing.T) {
		if got := tool(t, "sgdisk", "-v", raw); !strings.Contains(got, "No problems found") {
			t.Errorf("sgdisk -v:\n%s", got)
		}
	})
	t.Run("fsck.vfat", func(t *testing.T) {
		p := rep.Partitions[part["esp"]]
		tool(t, "fsck.vfat", "-n", extract(t, raw, p.Start, p.Size))
	})
	t.Run("unsquashfs", func(t *testing.T) {
		p := rep.Partitions[part["root-a"]]
		got := tool(t, "unsquashfs", "-o", fmt.Sprint(p.Start), "-s", raw)
		if !strings.Contains(got, "Compression zstd") {
			t.Errorf("root is not a zstd squashfs:\n%s", got)
		}
		// Listing every inode reads the whole directory table.
		tool(t, "unsquashfs", "-o", fmt.Sprint(p.Start), "-l", raw)
	})
	t.Run("e2fsck", func(t *testing.T) {
		p := rep.Partitions[part["state"]]
		tool(t, "e2fsck", "-fn", fmt.Sprintf("%s?offset=%d", raw, p.Start))
	})
	t.Run("qemu-img", func(t *testing.T) {
		tool(t, "qemu-img", "check", filepath.Join(out, "test.qcow2"))
	})
	t.Run("sparse", func(t *testing.T) {
		fi, err := os.Stat(raw)
		if err != nil {
			t.Fatal(err)
		}
		allocated := fi.Sys().(*syscall.Stat_t).Blocks * 512
		t.Logf("raw image: %d MiB apparent, %d MiB allocated", fi.Size()>>20, allocated>>20)
		if allocated >= fi.Size()/2 {
			t.Errorf("raw image is not sparse: %d of %d bytes allocated", allocated, fi.Size())
		}
	})
}

// TestImageFormats: every format of the test image holds the raw disk,
// read back by the tool that reads it; the manifest next to them lists
// each with its size and sha256.
func TestImageFormats(t *testing.T) {
	out := testImage(t)
	raw := filepath.Join(out, "test.raw")
	var m struct {
		Outputs []struct {
			Format, File, SHA256 string
			Size                 int64
		} `json:"outputs"`
	}
	if err := json.Unmarshal([]byte(readFile(filepath.Join(out, "test.manifest.json"))), &m); err != nil {
		t.Fatal(err)
	}
	var formats []string
	for _, o := range m.Outputs {
		formats = append(formats, o.Format)
		fi, err := os.Stat(filepath.Join(out, o.File))
		if err != nil {
			t.Errorf("the manifest lists %s: %v", o.File, err)
			continue
		}
		if fi.Size() != o.Size || sha256File(t, filepath.Join(out, o.File)) != o.SHA256 {
			t.Errorf("%s: %d bytes, the manifest says %d and sha256 %s", o.File, fi.Size(), o.Size, o.SHA256)
		}
		t.Logf("%s: %d MiB", o.File, o.Size>>20)
	}
	slices.Sort(formats)
	formats = slices.Compact(formats) // a PXE folder is listed file by file
	if want := []string{"gce", "iso", "ova", "pxe", "qcow2", "raw", "vhd", "vmdk"}; !slices.Equal(formats, want) {
		t.Errorf("the manifest lists %v, want %v", formats, want)
	}
	size, _ := os.Stat(raw)
	for _, tc := range []struct{ file, format string }{{"test.qcow2", "qcow2"}, {"test.vhd", "vpc"}, {"test.vmdk", "vmdk"}} {
		t.Run(tc.format, func(t *testing.T) {
			path := filepath.Join(out, tc.file)
			tool(t, "qemu-img", "compare", "-f", "raw", "-F", tc.format, raw, path)
			if tc.format != "vpc" { // qemu-img checks no VHD
				tool(t, "qemu-img", "check", "-f", tc.format, path)
			}
			var info struct {
				VirtualSize int64 `json:"virtual-size"`
			}
			json.Unmarshal([]byte(tool(t, "qemu-img", "info", "--output=json", "-f", tc.format, path)), &info)
			if info.VirtualSize != size.Size() || info.VirtualSize%(1<<20) != 0 {
				t.Errorf("virtual size %d, want the raw disk's %d, a whole number of MiB", info.VirtualSize, size.Size())
			}
		})
	}
	t.Run("live", func(t *testing.T) {
		// The ISO and the PXE folder boot the disk's own root squashfs.
		dir := t.TempDir()
		tool(t, "xorriso", "-osirrox", "on", "-indev", filepath.Join(out, "test.iso"), "-extract", "/nodebake", dir)
		root := filepath.Join(dir, "root.squashfs")
		fi, err := os.Stat(root)
		if err != nil {
			t.Fatal(err)
		}
		part := inspectImage(t, raw).Partitions[1]
		fromDisk := filepath.Join(t.TempDir(), "root-a")
		tool(t, "dd", "if="+raw, "of="+fromDisk, "bs=1M", "iflag=skip_bytes,count_bytes", fmt.Sprintf("skip=%d", part.Start), fmt.Sprintf("count=%d", fi.Size()))
		if sum := sha256File(t, root); sum != sha256File(t, fromDisk) || sum != sha256File(t, filepath.Join(out, "test.pxe", "root.squashfs")) {
			t.Errorf("the ISO's, the PXE folder's and the disk's root filesystems differ")
		}
		list := tool(t, "unsquashfs", "-l", filepath.Join(dir, "state.squashfs"))
		if !strings.Contains(list, "squashfs-root/lib/dpkg/status") {
			t.Errorf("the state seed holds no dpkg status:\n%s", tail(list, 2000))
		}
		report := tool(t, "xorriso", "-indev", filepath.Join(out, "test.iso"), "-report_el_torito", "plain")
		for _, want := range []string{"El Torito boot img :   1  BIOS", "El Torito boot img :   2  UEFI"} {
			if !strings.Contains(report, want) {
				t.Errorf("no %q in the ISO's El Torito catalog:\n%s", want, report)
			}
		}
	})
	t.Run("ova", func(t *testing.T) {
		ova := filepath.Join(out, "test.ova")
		if got := strings.Fields(tool(t, "tar", "-tf", ova)); !slices.Equal(got, []string{"test.ovf", "test.mf", "test.vmdk"}) {
			t.Errorf("members %v, want the descriptor, the manifest and the disk, in that order", got)
		}
		dir := t.TempDir()
		tool(t, "tar", "-xf", ova, "-C", dir)
		tool(t, "xmllint", "--noout", filepath.Join(dir, "test.ovf"))
		if sha256File(t, filepath.Join(dir, "test.vmdk")) != sha256File(t, filepath.Join(out, "test.vmdk")) {
			t.Error("the OVA's disk is not test.vmdk")
		}
		mf := readFile(filepath.Join(dir, "test.mf"))
		for _, f := range []string{"test.ovf", "test.vmdk"} {
			if want := "SHA256(" + f + ")= " + sha256File(t, filepath.Join(dir, f)); !strings.Contains(mf, want) {
				t.Errorf("the OVA's manifest lacks %q", want)
			}
		}
	})
	t.Run("gce", func(t *testing.T) {
		gce := filepath.Join(out, "test.tar.gz")
		if got := strings.TrimSpace(tool(t, "tar", "-tzf", gce)); got != "disk.raw" {
			t.Errorf("members %q, want disk.raw alone", got)
		}
		dir := t.TempDir()
		tool(t, "tar", "-xzSf", gce, "-C", dir)
		tool(t, "cmp", raw, filepath.Join(dir, "disk.raw"))
	})
}

func TestInspectReportsTheProfile(t *testing.T) {
	out := testImage(t)
	rep := inspectImage(t, filepath.Join(out, "test.raw"))

	var names []string
	for _, p := range rep.Partitions {
		names = append(names, p.Name)
	}
	if want := []string{"esp", "root-a", "root-b", "state"}; !slices.Equal(names, want) {
		t.Errorf("partitions %v, want %v", names, want)
	}
	sizes := map[string]int64{"esp": 256 << 20, "root-a": 2 << 30, "root-b": 2 << 30, "state": 1 << 30}
	for _, p := range rep.Partitions {
		if p.Size != sizes[p.Name] {
			t.Errorf("partition %s is %d bytes, want %d", p.Name, p.Size, sizes[p.Name])
		}
		if p.Start%(1<<20) != 0 {
			t.Errorf("partition %s starts at %d, not MiB-aligned", p.Name, p.Start)
		}
	}
	if got := rep.OSRelease["VERSION_CODENAME"]; got != "bookworm" {
		t.Errorf("VERSION_CODENAME %q, want bookworm", got)
	}
	if rep.Manifest.Name != "test" || len(rep.Manifest.ProfileDigest) != 64 || rep.Manifest.Packages < 100 || rep.Manifest.Files == 0 {
		t.Errorf("manifest summary %+v", rep.Manifest)
	}
	rootA := rep.Partitions[1].GUID
	for _, want := range []string{"root=PARTUUID=" + rootA, "ro", "console=ttyS0,115200", "nodebake.state=PARTUUID=" + rep.Partitions[3].GUID} {
		if !slices.Contains(strings.Fields(rep.Kernel.Cmdline), want) {
			t.Errorf("cmdline %q lacks %q", rep.Kernel.Cmdline, want)
		}
	}
	if strings.Contains(rep.Kernel.Cmdline, "/dev/") {
		t.Errorf("cmdline names a device: %q", rep.Kernel.Cmdline)
	}
	wantSysctls := map[string]string{
		"net.bridge.bridge-nf-call-iptables": "1", "net.ipv4.ip_forward": "1",
		"fs.inotify.max_user_watches": "1048576", "net.core.somaxconn": "4096",
	}
	for k, v := range wantSysctls {
		if rep.Sysctls[k] != v {
			t.Errorf("sysctl %s = %q, want %q", k, rep.Sysctls[k], v)
		}
	}
	if want := []string{"nf_conntrack", "overlay", "br_netfilter"}; !slices.Equal(rep.Modules, want) {
		t.Errorf("modules %v, want %v", rep.Modules, want)
	}
	if rep.Kit == nil || rep.Kit.KubernetesVersion != "v1.37.2" {
		t.Fatalf("kit %+v, want Kubernetes v1.37.2", rep.Kit)
	}
	paths := map[string]string{}
	for _, c := range rep.Kit.Components {
		if len(c.SHA256) != 64 {
			t.Errorf("component %s has sha256 %q", c.Name, c.SHA256)
		}
		paths[c.Name] = c.Path + "@" + c.Version
	}
	for name, want := range map[string]string{
		"kubeadm": "/usr/bin/kubeadm@v1.37.2", "kubelet": "/usr/bin/kubelet@v1.37.2", "kubectl": "/usr/bin/kubectl@v1.37.2",
		"containerd": "/usr/bin/containerd@v2.4.2", "runc": "/usr/bin/runc@v1.5.2", "crictl": "/usr/bin/crictl@v1.36.0",
		"bridge": "/opt/cni/bin/bridge@v1.9.1", "portmap": "/opt/cni/bin/portmap@v1.9.1",
		"flannel": "/opt/cni/bin/flannel@v0.9.1",
	} {
		if paths[name] != want {
			t.Errorf("component %s at %q, want %q", name, paths[name], want)
		}
	}
	wantImages := []string{
		"registry.k8s.io/kube-apiserver:v1.37.2", "registry.k8s.io/kube-controller-manager:v1.37.2",
		"registry.k8s.io/kube-scheduler:v1.37.2", "registry.k8s.io/kube-proxy:v1.37.2",
		"registry.k8s.io/coredns/coredns:v1.14.6", "registry.k8s.io/pause:3.10.2", "registry.k8s.io/etcd:3.7.0-0",
		"ghcr.io/flannel-io/flannel:v0.28.10",
	}
	var refs []string
	for _, img := range rep.Kit.Images {
		refs = append(refs, img.Ref)
		if !strings.HasPrefix(img.Digest, "sha256:") || len(img.Digest) != 71 || img.Source == "" {
			t.Errorf("image %s: digest %q, source %q", img.Ref, img.Digest, img.Source)
		}
	}
	slices.Sort(wantImages)
	if !slices.Equal(refs, wantImages) {
		t.Errorf("baked images %v, want kubeadm's %v", refs, wantImages)
	}
	for _, u := range []string{"containerd.service", "nodebake-images.service", "nodebake-images-workloads.service", "kubelet.service", "nodebake-cni.service", "nodebake-cni.path", "nodebake-testprobe.service", "nodebake-growstate.service", "nodebake-ssh-keygen.service", "systemd-networkd.service"} {
		if !slices.Contains(rep.EnabledUnits, u) {
			t.Errorf("unit %s not enabled; enabled: %v", u, rep.EnabledUnits)
		}
	}
}

func TestManifestMatchesImage(t *testing.T) {
	out := testImage(t)
	outside, err := os.ReadFile(filepath.Join(out, "test.manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Packages []struct{ Name, Version string }        `json:"packages"`
		Files    []struct{ Path, Source, SHA256 string } `json:"files"`
	}
	if err := json.Unmarshal(outside, &m); err != nil {
		t.Fatal(err)
	}
	var pkgs []string
	for _, p := range m.Packages {
		pkgs = append(pkgs, p.Name)
	}
	for _, want := range []string{"linux-image-amd64", "systemd", "openssh-server", "nftables", "conntrack", "systemd-boot-efi", "gettext-base"} {
		if !slices.Contains(pkgs, want) {
			t.Errorf("manifest lacks package %s", want)
		}
	}
	found := false
	for _, f := range m.Files {
		if f.Path == "/usr/lib/nodebake-test/probe" {
			found = f.Source == "overlay:testprobe/usr/lib/nodebake-test/probe" && len(f.SHA256) == 64
		}
	}
	if !found {
		t.Errorf("manifest does not record the overlay's probe with its source and sha256")
	}
	p := filepath.Join(t.TempDir(), "root")
	rep := inspectImage(t, filepath.Join(out, "test.raw"))
	tool(t, "unsquashfs", "-o", fmt.Sprint(rep.Partitions[1].Start), "-d", p, filepath.Join(out, "test.raw"), "/usr/share/nodebake/manifest.json")
	inside, err := os.ReadFile(filepath.Join(p, "usr/share/nodebake/manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The one beside the image also lists the outputs, which are made
	// after the one inside; the rest is the same.
	var in, beside map[string]any
	if err := json.Unmarshal(inside, &in); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(outside, &beside)
	if _, ok := in["outputs"]; ok {
		t.Error("the manifest inside the image lists outputs it was written before")
	}
	if _, ok := beside["outputs"]; !ok {
		t.Error("the manifest beside the image lists no outputs")
	}
	delete(beside, "outputs")
	if !reflect.DeepEqual(in, beside) {
		t.Error("the manifest inside the image differs from the one beside it")
	}
}

// TestBakedImagesMatchManifest reads the image archives out of the root
// with unsquashfs and tar and checks they hold, by name and digest, the
// images the manifest lists, each in the archive the manifest says: the
// control plane's static pods' in control-plane.tar, pause's,
// kube-proxy's and the pod network's in node.tar, the rest (CoreDNS) in
// workloads.tar; and that the layers are zstd's, which import fastest.
func TestBakedImagesMatchManifest(t *testing.T) {
	out := testImage(t)
	raw := filepath.Join(out, "test.raw")
	rep := inspectImage(t, raw)
	dir := filepath.Join(t.TempDir(), "root")
	tool(t, "unsquashfs", "-o", fmt.Sprint(rep.Partitions[1].Start), "-d", dir, raw, "/usr/share/nodebake/images")
	images := filepath.Join(dir, "usr/share/nodebake/images")
	inArchive, inList := map[string]string{}, map[string]string{}
	archiveOf := map[string]string{}
	for _, name := range []string{"node", "workloads", "control-plane"} {
		archive := filepath.Join(images, name+".tar")
		var idx struct {
			Manifests []struct {
				Digest      string            `json:"digest"`
				Annotations map[string]string `json:"annotations"`
			} `json:"manifests"`
		}
		index := tool(t, "tar", "-xOf", archive, "index.json")
		if err := json.Unmarshal([]byte(index), &idx); err != nil {
			t.Fatalf("%s: index.json: %v\n%s", name, err, index)
		}
		for _, m := range idx.Manifests {
			ref := m.Annotations["io.containerd.image.name"]
			inArchive[ref], archiveOf[ref] = m.Digest, name
			var man struct {
				Layers []struct{ MediaType string } `json:"layers"`
			}
			blob := "blobs/sha256/" + strings.TrimPrefix(m.Digest, "sha256:")
			if err := json.Unmarshal([]byte(tool(t, "tar", "-xOf", archive, blob)), &man); err != nil {
				t.Fatalf("%s: %s's manifest: %v", name, ref, err)
			}
			for _, l := range man.Layers {
				if l.MediaType != "application/vnd.oci.image.layer.v1.tar+zstd" {
					t.Errorf("%s: a layer of %s is %s, not zstd", name, ref, l.MediaType)
				}
			}
		}
		list, err := os.ReadFile(filepath.Join(images, name+".list"))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(list)), "\n") {
			ref, digest, _ := strings.Cut(l, " ")
			inList[ref] = digest
		}
	}
	if len(rep.Kit.Images) == 0 || len(inArchive) != len(rep.Kit.Images) || len(inList) != len(rep.Kit.Images) {
		t.Fatalf("manifest lists %d images, the archives hold %d, their lists %d", len(rep.Kit.Images), len(inArchive), len(inList))
	}
	for _, img := range rep.Kit.Images {
		if inArchive[img.Ref] != img.Digest || inList[img.Ref] != img.Digest || archiveOf[img.Ref] != img.Archive {
			t.Errorf("%s: manifest %s in %s, archive %s in %s, list %s", img.Ref, img.Digest, img.Archive, inArchive[img.Ref], archiveOf[img.Ref], inList[img.Ref])
		}
		repo := img.Ref[strings.LastIndex(img.Ref, "/")+1 : strings.LastIndex(img.Ref, ":")]
		want := "workloads"
		switch repo {
		case "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler":
			want = "control-plane"
		case "pause", "kube-proxy", "flannel":
			want = "node"
		}
		if img.Archive != want {
			t.Errorf("%s is in the %s archive, want %s", img.Ref, img.Archive, want)
		}
	}
	// The node's and the workloads' images are in containerd's root on
	// the state partition already; the control plane's are not.
	seeded := seededImages(t, raw, filepath.Join(out, "test.manifest.json"), rep)
	n := 0
	for _, img := range rep.Kit.Images {
		switch {
		case img.Archive == "control-plane" && seeded[img.Ref] != "":
			t.Errorf("%s, a control-plane image, is in containerd's root on the state partition", img.Ref)
		case img.Archive != "control-plane" && seeded[img.Ref] != img.Digest:
			t.Errorf("%s: containerd's root on the state partition has %q, the manifest %s", img.Ref, seeded[img.Ref], img.Digest)
		case img.Archive != "control-plane":
			n++
		}
	}
	if len(seeded) != n {
		t.Errorf("containerd's root on the state partition holds %d images, want the %d of the node's and the workloads' archives", len(seeded), n)
	}
}

// TestValidateAgainstTheImage renders a config for each role and checks
// it with `firstboot validate --image` against the test image: the
// image's own kubeadm validates it, and the image bakes what it needs. A
// control-plane join names no version and takes the cluster's, as a
// worker does.
func TestValidateAgainstTheImage(t *testing.T) {
	image := filepath.Join(testImage(t), "test.raw")
	dir := t.TempDir()
	crt, key := clusterCA(t, dir)
	const token = "abcdef.0123456789abcdef"
	certKey := strings.Repeat("cd", 32)
	for role, args := range map[string][]string{
		"init":          {"--ca-key", key, "--advertise-address", "10.10.0.1", "--node-name", "cp-1"},
		"join":          {"--endpoint", "10.10.0.1:6443"},
		"control-plane": {"--endpoint", "10.10.0.1:6443", "--certificate-key", certKey},
	} {
		t.Run(role, func(t *testing.T) {
			argv := append([]string{"render", "--role", role, "--token", token, "--ca-cert", crt}, args...)
			ign, err := exec.Command(firstboot(t), argv...).Output()
			if err != nil {
				t.Fatalf("firstboot %v: %v", argv, err)
			}
			p := filepath.Join(dir, role+".ign")
			if err := os.WriteFile(p, ign, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(firstboot(t), "validate", p, "--image", image).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "valid: role "+role) ||
				!strings.Contains(string(out), "test.raw's kubeadm accepts it, and the image bakes every image it needs") {
				t.Errorf("validate --image: %v\n%s", err, out)
			}
			if strings.Contains(string(out), token) || strings.Contains(string(out), certKey) {
				t.Errorf("validate printed a secret:\n%s", out)
			}
		})
	}
}
