package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nodebake/nodebake/internal/defaults"
	"github.com/nodebake/nodebake/internal/ignitioncfg"
	"github.com/nodebake/nodebake/internal/kubeadm"
	"github.com/nodebake/nodebake/internal/nodecheck"
)

func newRenderCmd() *cobra.Command {
	var (
		o             kubeadm.RenderOptions
		role          string
		sshKeys       []string
		files         []string
		caCert, caKey string
		spec          string
		patches       string
	)
	cmd := &cobra.Command{
		Use:   "render --role init|join|control-plane [flags]",
		Short: "Write the Ignition config that makes a node of a role",
		Long: "render writes, on standard output, an Ignition config holding the node's kubeadm\n" +
			"configuration at " + kubeadm.ConfigPath + " (mode 0600), its hostname, root's SSH\n" +
			"keys and any --file. Feed it to a VM (fw_cfg), a launch template or a config drive.\n" +
			"--spec 3.4.0 writes spec 3.4; the default, 3.3.0, is the newest spec Debian 12's\n" +
			"ignition-validate reads, and holds the same fields.",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Role = kubeadm.Role(role)
			rs := ignitioncfg.RenderSpec{Version: spec, Hostname: o.NodeName}
			if caCert != "" {
				pem, err := os.ReadFile(caCert)
				if err != nil {
					return err
				}
				if o.Role == kubeadm.RoleInit {
					if caKey == "" {
						return fmt.Errorf("%w: --ca-cert for init needs --ca-key", errUsage)
					}
					key, err := os.ReadFile(caKey)
					if err != nil {
						return err
					}
					rs.Files = append(rs.Files,
						ignitioncfg.RenderFile{Path: "/etc/kubernetes/pki/ca.crt", Data: pem, Mode: 0o644},
						ignitioncfg.RenderFile{Path: "/etc/kubernetes/pki/ca.key", Data: key, Mode: 0o600})
				} else {
					h, err := kubeadm.CACertHash(pem)
					if err != nil {
						return fmt.Errorf("%w: --ca-cert %s: %v", errInvalid, caCert, err)
					}
					o.CACertHashes = append(o.CACertHashes, h)
				}
			}
			if patches != "" {
				pf, err := patchFiles(patches)
				if err != nil {
					return err
				}
				rs.Files = append(rs.Files, pf...)
				o.Patches = true
			}
			kc, err := kubeadm.Render(o)
			if err != nil {
				return fmt.Errorf("%w: %s", errInvalid, flagErrors(err))
			}
			rs.Files = append(rs.Files, ignitioncfg.RenderFile{Path: kubeadm.ConfigPath, Data: kc, Mode: 0o600})
			for _, f := range files {
				dest, local, ok := strings.Cut(f, "=")
				if !ok || !strings.HasPrefix(dest, "/") {
					return fmt.Errorf("%w: --file %q: want /PATH/IN/NODE=LOCAL", errUsage, f)
				}
				data, err := os.ReadFile(local)
				if err != nil {
					return err
				}
				mode := 0o644
				if fi, err := os.Stat(local); err == nil && fi.Mode()&0o111 != 0 {
					mode = 0o755
				}
				rs.Files = append(rs.Files, ignitioncfg.RenderFile{Path: dest, Data: data, Mode: mode})
			}
			for _, k := range sshKeys {
				key, err := sshKey(k)
				if err != nil {
					return fmt.Errorf("%w: --ssh-key: %v", errUsage, err)
				}
				rs.SSHKeys = append(rs.SSHKeys, key)
			}
			out, err := ignitioncfg.Render(rs)
			if err != nil {
				return err
			}
			// What render writes, validate accepts: the same check, so a
			// --file into /usr, say, is refused here and not on the node.
			res, err := nodecheck.Check(cmd.Context(), nodecheck.Input{Config: out, Fetch: &ignitioncfg.Fetcher{Deadline: time.Second}})
			if err != nil {
				return fmt.Errorf("%w: the rendered config: %s", errInvalid, kubeadm.RedactError(err, secretsOf(res)))
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&role, "role", "", "init, join or control-plane")
	f.StringVar(&spec, "spec", "3.3.0", "the Ignition spec to write: 3.3.0 or 3.4.0")
	f.StringVar(&o.KubernetesVersion, "kubernetes-version", defaults.KubernetesVersion, "the image's Kubernetes version (init)")
	f.StringVar(&o.Endpoint, "endpoint", "", "the API server, HOST:PORT (join; for init, the control-plane endpoint)")
	f.StringVar(&o.Token, "token", "", "bootstrap token, abcdef.0123456789abcdef")
	f.StringSliceVar(&o.CACertHashes, "ca-cert-hash", nil, "the cluster CA's sha256:HASH (join)")
	f.StringVar(&caCert, "ca-cert", "", "the cluster CA certificate: baked into an init node with --ca-key, hashed for a join")
	f.StringVar(&caKey, "ca-key", "", "the cluster CA key (init, with --ca-cert)")
	f.StringVar(&o.CertificateKey, "certificate-key", "", "64 hex digits: init uploads the certificates with it, a control-plane join downloads them")
	f.StringVar(&o.NodeName, "node-name", "", "the node's name and hostname (default: the metadata service's, else node-MAC)")
	f.StringVar(&o.AdvertiseAddress, "advertise-address", "", "the API server address this control-plane node advertises")
	f.StringVar(&o.PodCIDR, "pod-cidr", defaults.PodCIDR, "the pod network; must be the image's pod network CIDR")
	f.StringVar(&o.ServiceCIDR, "service-cidr", "", "the service network (kubeadm's default if empty)")
	f.BoolVar(&o.SingleNode, "single-node", false, "leave the control-plane taint off, so pods run on a one-node cluster")
	f.DurationVar(&o.LeaderElectionLease, "leader-election-lease", time.Minute, "init: the controller manager's and scheduler's leader lease, renewed within 2/3 of it (0: Kubernetes' 15s); long enough for a slow control plane")
	f.StringVar(&o.EncryptionAlgorithm, "encryption-algorithm", "", "init: the key type of the cluster's certificates, RSA-2048 (kubeadm's default), RSA-3072, RSA-4096, ECDSA-P256 or ECDSA-P384")
	f.StringVar(&patches, "patches", "", "a local directory of kubeadm patches (kubeadm's file names), put in "+kubeadm.PatchesDir+" and named by the kubeadm config")
	f.StringArrayVar(&sshKeys, "ssh-key", nil, "an SSH public key for root, or a file holding one")
	f.StringArrayVar(&files, "file", nil, "an extra file, /PATH/IN/NODE=LOCAL")
	return cmd
}

// patchFiles reads a directory of kubeadm patches into files for
// kubeadm.PatchesDir. A name kubeadm would skip is refused here: a patch
// silently not applied is worse than none.
func patchFiles(dir string) ([]ignitioncfg.RenderFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []ignitioncfg.RenderFile
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := kubeadm.CheckPatchName(e.Name()); err != nil {
			return nil, fmt.Errorf("%w: --patches %s: %v", errInvalid, p, err)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		files = append(files, ignitioncfg.RenderFile{Path: kubeadm.PatchesDir + "/" + e.Name(), Data: data, Mode: 0o600})
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%w: --patches %s holds no patch file", errInvalid, dir)
	}
	return files, nil
}

// renderFlags are the flags that set each of kubeadm.RenderOptions.
var renderFlags = map[string]string{
	"Role": "--role", "KubernetesVersion": "--kubernetes-version", "Endpoint": "--endpoint", "Token": "--token",
	"CACertHashes": "--ca-cert-hash (or --ca-cert)", "CertificateKey": "--certificate-key",
	"EncryptionAlgorithm": "--encryption-algorithm", "LeaderElectionLease": "--leader-election-lease",
	"NodeName": "--node-name", "AdvertiseAddress": "--advertise-address", "PodCIDR": "--pod-cidr", "ServiceCIDR": "--service-cidr",
}

// flagErrors says Render's errors in this command's flags, one a line.
func flagErrors(err error) string {
	errs := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs = joined.Unwrap()
	}
	var lines []string
	for _, e := range errs {
		var oe *kubeadm.OptionError
		if !errors.As(e, &oe) {
			lines = append(lines, e.Error())
			continue
		}
		var flags []string
		for _, o := range oe.Options {
			flag, ok := renderFlags[o]
			if !ok {
				flag = o
			}
			flags = append(flags, flag)
		}
		lines = append(lines, strings.Join(flags, " and ")+": "+oe.Message)
	}
	return strings.Join(lines, "\n")
}

// secretsOf are the secrets of a checked config, if it parsed that far.
func secretsOf(res *nodecheck.Result) []string {
	if res == nil || res.Kubeadm == nil {
		return nil
	}
	return res.Kubeadm.Secrets
}

// sshKeyTypes are the key types of OpenSSH's public keys.
var sshKeyTypes = []string{
	"ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
	"sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
}

// sshKey is arg as an SSH public key: the key itself, or a file holding
// one. Anything else, a mistyped path among them, is refused rather than
// baked in as a key.
func sshKey(arg string) (string, error) {
	key := arg
	if data, err := os.ReadFile(arg); err == nil {
		key = strings.TrimSpace(string(data))
	}
	fields := strings.Fields(key)
	if strings.ContainsAny(key, "\r\n") || len(fields) < 2 || !slices.Contains(sshKeyTypes, fields[0]) {
		return "", fmt.Errorf("%q is neither an SSH public key (such as ssh-ed25519 AAAA...) nor a file holding one", arg)
	}
	return key, nil
}
