package agent

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nodebake/nodebake/internal/atomicfile"
)

// The instance's metadata, for commands to read (Cluster API's Flatcar
// templates give kubeadm.service EnvironmentFile=/run/metadata/flatcar
// and fill their kubeadm configuration in from it with envsubst).
const (
	// MetadataPath holds NODEBAKE_* variables on every platform.
	MetadataPath = "/run/metadata/nodebake"
	// FlatcarMetadataPath holds what a cloud's metadata service says, by
	// the names Flatcar's coreos-metadata gives it (COREOS_EC2_HOSTNAME,
	// COREOS_GCE_IP_LOCAL_0, COREOS_AZURE_IPV4_DYNAMIC, ...), and the
	// NODEBAKE_* ones; off a cloud, those only.
	FlatcarMetadataPath = "/run/metadata/flatcar"
)

// metadata is the node's NODEBAKE_* variables and the cloud's own.
func (a *Agent) metadata() (own, cloud map[string]string) {
	f := a.run.found
	own = map[string]string{"NODEBAKE_PLATFORM": "metal", "NODEBAKE_HOSTNAME": a.st.NodeName}
	switch a.st.Source {
	case "aws", "gcp", "azure":
		own["NODEBAKE_PLATFORM"] = a.st.Source
	}
	if f != nil {
		// Asked of the cloud in this run's fetch: not on the later boots
		// of a configured node, which run no commands.
		cloud = f.Metadata
	}
	id, ip := "", ""
	if f != nil {
		id, ip = f.InstanceID, f.IPv4
	}
	if id == "" {
		// Off a cloud: the firmware's UUID, else the machine-id.
		for _, p := range []string{"/sys/class/dmi/id/product_uuid", "/etc/machine-id"} {
			if b, err := os.ReadFile(a.path(p)); err == nil && strings.TrimSpace(string(b)) != "" {
				id = strings.TrimSpace(string(b))
				break
			}
		}
	}
	if ip == "" {
		ip, _ = a.Node.IPv4()
	}
	own["NODEBAKE_INSTANCE_ID"], own["NODEBAKE_IPV4_LOCAL"] = id, ip
	return own, cloud
}

// writeMetadata writes /run/metadata/nodebake and /run/metadata/flatcar
// as KEY=VALUE lines, the format of systemd's EnvironmentFile=. /run is
// empty after each boot: it is written again whenever commands may read
// it, and in record.
func (a *Agent) writeMetadata() error {
	own, cloud := a.metadata()
	all := maps.Clone(own)
	maps.Copy(all, cloud)
	for p, vars := range map[string]map[string]string{MetadataPath: own, FlatcarMetadataPath: all} {
		var b strings.Builder
		for _, k := range slices.Sorted(maps.Keys(vars)) {
			if vars[k] != "" {
				fmt.Fprintf(&b, "%s=%s\n", k, vars[k])
			}
		}
		full := a.path(p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := atomicfile.Write(full, []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	return nil
}
