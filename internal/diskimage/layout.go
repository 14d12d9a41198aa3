// Package diskimage lays out and writes the node's GPT disk image, and reads
// it back. It is the only package that imports go-diskfs.
package diskimage

import (
	"fmt"

	"github.com/google/uuid"
)

// Sector and alignment of the image.
const (
	SectorSize = 512
	align      = 1 << 20
)

// Partition type GUIDs (the Discoverable Partitions Specification's).
const (
	TypeESP       = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	TypeRootX8664 = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
	TypeLinuxData = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
)

// Partition roles, which are also their GPT names and their numbers.
const (
	RoleESP   = "esp"
	RoleRootA = "root-a"
	RoleRootB = "root-b"
	RoleState = "state"
)

// namespace derives every identity in an image from its profile digest.
var namespace = uuid.MustParse("6f1d3c2a-7b1e-4e0a-9c55-6e6f64656261")

// Partition is one planned partition.
type Partition struct {
	Number int    `json:"number"`
	Name   string `json:"name"`
	Type   string `json:"type"`
	GUID   string `json:"guid"`
	Start  int64  `json:"start"` // bytes
	Size   int64  `json:"size"`  // bytes
}

// Layout is the planned disk: its size, GUID, partitions and the UUID of
// the state filesystem.
type Layout struct {
	Size       int64       `json:"size"`
	DiskGUID   string      `json:"diskGUID"`
	StateUUID  string      `json:"stateFilesystemUUID"`
	Partitions []Partition `json:"partitions"`
}

// Plan lays out an ESP, two root slots of rootSize (B is left empty for
// later A/B updates) and the state partition last, so it can grow.
// Identities come from digest, so the same profile gives the same disk.
func Plan(digest string, espSize, rootSize, stateSize int64) Layout {
	id := func(role string) string {
		return uuid.NewSHA1(namespace, []byte(digest+"/"+role)).String()
	}
	l := Layout{DiskGUID: id("disk"), StateUUID: id("state-filesystem")}
	offset := int64(align)
	for i, p := range []struct {
		role, typ string
		size      int64
	}{
		{RoleESP, TypeESP, espSize},
		{RoleRootA, TypeRootX8664, rootSize},
		{RoleRootB, TypeRootX8664, rootSize},
		{RoleState, TypeLinuxData, stateSize},
	} {
		l.Partitions = append(l.Partitions, Partition{
			Number: i + 1, Name: p.role, Type: p.typ, GUID: id(p.role),
			Start: offset, Size: p.size,
		})
		offset += p.size
	}
	// The backup GPT needs 33 sectors at the end; keep the size aligned.
	l.Size = offset + align
	return l
}

// Part is the partition with the given role.
func (l Layout) Part(role string) Partition {
	for _, p := range l.Partitions {
		if p.Name == role {
			return p
		}
	}
	panic(fmt.Sprintf("diskimage: no partition %q in layout", role))
}
