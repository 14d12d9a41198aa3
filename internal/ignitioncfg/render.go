package ignitioncfg

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/coreos/ignition/v2/config/v3_3"
	"github.com/coreos/ignition/v2/config/v3_4"
	types "github.com/coreos/ignition/v2/config/v3_4/types"
	"github.com/coreos/vcontext/report"
	"github.com/vincent-petithory/dataurl"
)

// RenderFile is one file a rendered config writes.
type RenderFile struct {
	Path string
	Data []byte
	Mode int
}

// RenderSpec is what a rendered config holds.
type RenderSpec struct {
	// Version is the spec written: "3.3.0" (the newest Debian 12's
	// ignition-validate reads) or "3.4.0". The fields render uses are the
	// same in both.
	Version  string
	Files    []RenderFile
	Hostname string
	// SSHKeys are authorised for root.
	SSHKeys []string
}

// gzipOver is the size above which contents are gzipped: cloud user data
// is small (16 KiB on AWS).
const gzipOver = 1024

// RenderVersions are the specs Render writes.
var RenderVersions = []string{"3.3.0", "3.4.0"}

// Render writes an Ignition config of spec s.Version and checks it with
// Ignition's own parser for that spec.
func Render(s RenderSpec) ([]byte, error) {
	parse := map[string]func([]byte) (report.Report, error){
		"3.3.0": func(b []byte) (report.Report, error) { _, r, err := v3_3.Parse(b); return r, err },
		"3.4.0": func(b []byte) (report.Report, error) { _, r, err := v3_4.Parse(b); return r, err },
	}[s.Version]
	if parse == nil {
		return nil, fmt.Errorf("%w: spec %q; render writes %v", ErrVersion, s.Version, RenderVersions)
	}
	cfg := types.Config{Ignition: types.Ignition{Version: s.Version}}
	files := append([]RenderFile(nil), s.Files...)
	if s.Hostname != "" {
		files = append(files, RenderFile{Path: "/etc/hostname", Data: []byte(s.Hostname + "\n"), Mode: 0o644})
	}
	sort.SliceStable(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	for _, f := range files {
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		if isSecret(f.Path) {
			mode = 0o600
		}
		res := types.Resource{}
		data := f.Data
		if len(data) > gzipOver {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write(data)
			zw.Close()
			data = b.Bytes()
			res.Compression = ptr("gzip")
		}
		res.Source = ptr(dataurl.New(data, "application/octet-stream").String())
		cfg.Storage.Files = append(cfg.Storage.Files, types.File{
			Node:          types.Node{Path: f.Path, Overwrite: ptr(true)},
			FileEmbedded1: types.FileEmbedded1{Contents: res, Mode: ptr(mode)},
		})
	}
	if len(s.SSHKeys) > 0 {
		u := types.PasswdUser{Name: "root"}
		for _, k := range s.SSHKeys {
			u.SSHAuthorizedKeys = append(u.SSHAuthorizedKeys, types.SSHAuthorizedKey(k))
		}
		cfg.Passwd.Users = append(cfg.Passwd.Users, u)
	}
	out, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	if rpt, err := parse(out); err != nil {
		return nil, &InvalidError{Problems: problemsOf(rpt)}
	}
	return append(out, '\n'), nil
}

func ptr[T any](v T) *T { return &v }
