package configsource

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nodebake/nodebake/internal/retry"
)

// DMI says which cloud a machine is on; the cloud sources are tried only
// there, so a node elsewhere never waits on a metadata address.
func (e *Env) dmi(field string) string {
	b, _ := os.ReadFile(e.path("/sys/class/dmi/id/" + field))
	return strings.TrimSpace(string(b))
}

func onAWS(e *Env) bool {
	return strings.Contains(e.dmi("sys_vendor"), "Amazon") || strings.Contains(e.dmi("bios_vendor"), "Amazon")
}

func onGCP(e *Env) bool {
	return e.dmi("product_name") == "Google Compute Engine" || e.dmi("sys_vendor") == "Google"
}

// azureAssetTag is the chassis asset tag of every Azure VM.
const azureAssetTag = "7783-7084-3265-9085-8269-3286-77"

func onAzure(e *Env) bool { return e.dmi("chassis_asset_tag") == azureAssetTag }

func base(set, def string) string {
	if set != "" {
		return strings.TrimSuffix(set, "/")
	}
	return def
}

// fromAWS reads EC2 user data through IMDSv2: a session token first (PUT),
// then the user data with the token.
func fromAWS(ctx context.Context, e *Env) (*Found, error) {
	b := base(e.AWSBase, "http://169.254.169.254")
	token, err := e.do(ctx, http.MethodPut, b+"/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "300"})
	if err != nil {
		return nil, fmt.Errorf("IMDSv2 token: %w", err)
	}
	h := map[string]string{"X-aws-ec2-metadata-token": string(token)}
	data, err := e.get(ctx, b+"/latest/user-data", h)
	if err != nil {
		return nil, err
	}
	f := &Found{Config: data}
	f.Metadata = e.metadata(ctx, b+"/latest/meta-data/", h, map[string]string{
		"COREOS_EC2_HOSTNAME":          "local-hostname",
		"COREOS_EC2_INSTANCE_ID":       "instance-id",
		"COREOS_EC2_INSTANCE_TYPE":     "instance-type",
		"COREOS_EC2_IPV4_LOCAL":        "local-ipv4",
		"COREOS_EC2_IPV4_PUBLIC":       "public-ipv4",
		"COREOS_EC2_AVAILABILITY_ZONE": "placement/availability-zone",
		"COREOS_EC2_REGION":            "placement/region",
	})
	f.Hostname, f.InstanceID, f.IPv4 = f.Metadata["COREOS_EC2_HOSTNAME"], f.Metadata["COREOS_EC2_INSTANCE_ID"], f.Metadata["COREOS_EC2_IPV4_LOCAL"]
	return f, nil
}

// metadata reads each of paths under base, by the variable it is to be;
// one the service does not have is left out.
func (e *Env) metadata(ctx context.Context, base string, h map[string]string, paths map[string]string) map[string]string {
	out := map[string]string{}
	for name, p := range paths {
		if v, err := e.get(ctx, base+p, h); err == nil {
			out[name] = strings.TrimSpace(string(v))
		}
	}
	return out
}

// fromGCP reads the instance attribute user-data.
func fromGCP(ctx context.Context, e *Env) (*Found, error) {
	b := base(e.GCPBase, "http://metadata.google.internal") + "/computeMetadata/v1/instance"
	h := map[string]string{"Metadata-Flavor": "Google"}
	data, err := e.get(ctx, b+"/attributes/user-data", h)
	if err != nil {
		return nil, err
	}
	f := &Found{Config: data}
	f.Metadata = e.metadata(ctx, b+"/", h, map[string]string{
		"COREOS_GCE_HOSTNAME":      "hostname",
		"COREOS_GCE_IP_LOCAL_0":    "network-interfaces/0/ip",
		"COREOS_GCE_IP_EXTERNAL_0": "network-interfaces/0/access-configs/0/external-ip",
		"COREOS_GCE_MACHINE_TYPE":  "machine-type",
	})
	// The FQDN; the node name is its first label.
	f.Hostname, _, _ = strings.Cut(f.Metadata["COREOS_GCE_HOSTNAME"], ".")
	if id, err := e.get(ctx, b+"/id", h); err == nil {
		f.InstanceID = strings.TrimSpace(string(id))
	}
	f.IPv4 = f.Metadata["COREOS_GCE_IP_LOCAL_0"]
	return f, nil
}

// fromAzure reads IMDS userData, which Azure returns base64-encoded.
func fromAzure(ctx context.Context, e *Env) (*Found, error) {
	b := base(e.AzureBase, "http://169.254.169.254") + "/metadata/instance/compute"
	h := map[string]string{"Metadata": "true"}
	enc, err := e.get(ctx, b+"/userData?api-version=2021-01-01&format=text", h)
	if err != nil {
		return nil, err
	}
	data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(enc)))
	if err != nil {
		return nil, fmt.Errorf("userData is not base64: %w", err)
	}
	if len(data) == 0 {
		return nil, ErrNone
	}
	f := &Found{Config: data}
	const q = "?api-version=2021-01-01&format=text"
	f.Metadata = e.metadata(ctx, base(e.AzureBase, "http://169.254.169.254")+"/metadata/instance/", h, map[string]string{
		"COREOS_AZURE_IPV4_DYNAMIC": "network/interface/0/ipv4/ipAddress/0/privateIpAddress" + q,
		"COREOS_AZURE_IPV4_VIRTUAL": "network/interface/0/ipv4/ipAddress/0/publicIpAddress" + q,
		"COREOS_AZURE_VMSIZE":       "compute/vmSize" + q,
	})
	if name, err := e.get(ctx, b+"/name"+q, h); err == nil {
		f.Hostname = strings.TrimSpace(string(name))
	}
	if id, err := e.get(ctx, b+"/vmId"+q, h); err == nil {
		f.InstanceID = strings.TrimSpace(string(id))
	}
	f.IPv4 = f.Metadata["COREOS_AZURE_IPV4_DYNAMIC"]
	return f, nil
}

func (e *Env) get(ctx context.Context, u string, headers map[string]string) ([]byte, error) {
	data, err := e.do(ctx, http.MethodGet, u, headers)
	if err == nil && len(strings.TrimSpace(string(data))) == 0 {
		return nil, ErrNone
	}
	return data, err
}

// do retries a request with backoff until the source's deadline: the
// network, or the metadata service, may not be up yet. 404 means there is
// nothing there (ErrNone); other 4xx answers are final.
func (e *Env) do(ctx context.Context, method, u string, headers map[string]string) ([]byte, error) {
	deadline := e.Deadline
	if deadline == 0 {
		deadline = 2 * time.Minute
	}
	pu, _ := url.Parse(u)
	var data []byte
	err := retry.Do(ctx, retry.Policy{Deadline: deadline, First: e.Backoff, Max: 30 * time.Second,
		OnRetry: func(attempt int, err error, wait time.Duration) {
			if e.Log != nil {
				e.Log.Info("config source not answering yet", "url", redact(pu), "attempt", attempt, "error", err.Error(), "retry_in", wait.String())
			}
		}}, func(ctx context.Context) error {
		d, final, err := e.once(ctx, method, u, headers)
		if err != nil && final {
			return retry.Final(err)
		}
		data = d
		return err
	})
	if err != nil && !errors.Is(err, ErrNone) {
		return nil, fmt.Errorf("%s: %w", redact(pu), err)
	}
	return data, err
}

func (e *Env) once(ctx context.Context, method, u string, headers map[string]string) ([]byte, bool, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, true, err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := e.client().Do(req)
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	switch {
	case err != nil:
		return nil, false, err
	case resp.StatusCode == http.StatusOK:
		return data, true, nil
	case resp.StatusCode == http.StatusNotFound:
		return nil, true, ErrNone
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusRequestTimeout:
		return nil, true, fmt.Errorf("HTTP %s", resp.Status)
	default:
		return nil, false, errors.New("HTTP " + resp.Status)
	}
}

// redact drops credentials from a URL for logs and records.
func redact(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User = nil
	c.RawQuery = ""
	return c.String()
}
