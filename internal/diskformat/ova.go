package diskformat

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/nodebake/nodebake/internal/command"
)

// The OVA's virtual hardware, which the importer may change: what a
// Kubernetes control plane needs at least.
const (
	ovaCPUs     = 2
	ovaMemoryMB = 4096
)

// writeOVA writes an OVA: a tar (POSIX ustar, as OVF 1.0 requires) of
// the OVF descriptor, then its manifest, then the stream-optimized VMDK,
// the order the OVF specification (DSP0243) sets.
func writeOVA(ctx context.Context, run *command.Runner, raw, dst string, o Options) error {
	capacity, err := sizeOf(raw)
	if err != nil {
		return err
	}
	vmdk := o.VMDK
	if vmdk == "" {
		dir, done, err := scratch(dst)
		if err != nil {
			return err
		}
		defer done()
		vmdk = filepath.Join(dir, o.base(".vmdk"))
		if err := writeVMDK(ctx, run, raw, vmdk, o); err != nil {
			return err
		}
	}
	vmdkSize, err := sizeOf(vmdk)
	if err != nil {
		return err
	}
	vmdkSum, err := fileSum(vmdk)
	if err != nil {
		return err
	}
	ovf := descriptor(o, capacity, vmdkSize)
	ovfSum := sha256.Sum256(ovf)
	mf := fmt.Sprintf("SHA256(%s)= %s\nSHA256(%s)= %s\n",
		o.base(".ovf"), hex.EncodeToString(ovfSum[:]), o.base(".vmdk"), vmdkSum)

	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	add := func(name string, size int64, body io.Reader) error {
		h := &tar.Header{Name: name, Size: size, Mode: 0o644, ModTime: o.Epoch, Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("%s: %s: %w", dst, name, err)
		}
		if _, err := io.Copy(tw, body); err != nil {
			return fmt.Errorf("%s: %s: %w", dst, name, err)
		}
		return nil
	}
	if err := add(o.base(".ovf"), int64(len(ovf)), strings.NewReader(string(ovf))); err != nil {
		return err
	}
	if err := add(o.base(".mf"), int64(len(mf)), strings.NewReader(mf)); err != nil {
		return err
	}
	disk, err := os.Open(vmdk)
	if err != nil {
		return err
	}
	defer disk.Close()
	if err := add(o.base(".vmdk"), vmdkSize, disk); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}

func fileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// descriptor is the OVF 1.0 envelope: one disk on an LSI Logic SCSI
// controller, a CD-ROM on IDE for an Ignition config drive (a volume
// labelled ignition or config-2, which the agent reads), one vmxnet3 NIC,
// and the firmware, EFI unless o asks for BIOS.
func descriptor(o Options, capacity, vmdkSize int64) []byte {
	esc := func(s string) string {
		var b strings.Builder
		xml.EscapeText(&b, []byte(s))
		return b.String()
	}
	name := esc(filepath.Base(o.Name))
	firmware := o.Firmware
	if firmware == "" {
		firmware = FirmwareEFI
	}
	return []byte(fmt.Sprintf(ovfTemplate, esc(o.base(".vmdk")), vmdkSize, capacity, name, name, name, ovaCPUs, ovaMemoryMB, esc(firmware)))
}

// ovfTemplate is filled with the VMDK's name and size, the disk's
// capacity, the name three times, the CPUs, the memory and the firmware. The rasd
// elements of each Item are in the schema's (alphabetical) order.
const ovfTemplate = `<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <References>
    <File ovf:href="%s" ovf:id="file1" ovf:size="%d"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="%d" ovf:capacityAllocationUnits="byte" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <NetworkSection>
    <Info>The logical networks</Info>
    <Network ovf:name="VM Network">
      <Description>The node's network</Description>
    </Network>
  </NetworkSection>
  <VirtualSystem ovf:id="%s">
    <Info>A Kubernetes node image built by nodebake</Info>
    <Name>%s</Name>
    <OperatingSystemSection ovf:id="96" vmw:osType="debian11_64Guest">
      <Info>Debian GNU/Linux, 64-bit</Info>
    </OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemIdentifier>%s</vssd:VirtualSystemIdentifier>
        <vssd:VirtualSystemType>vmx-13</vssd:VirtualSystemType>
      </System>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:ElementName>virtual CPUs</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>%d</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:ElementName>memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>%d</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:ElementName>SCSI controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>lsilogic</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:ElementName>IDE controller 0</rasd:ElementName>
        <rasd:InstanceID>4</rasd:InstanceID>
        <rasd:ResourceType>5</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:ElementName>disk 0</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>
        <rasd:InstanceID>5</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>
      <Item ovf:required="false">
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:AutomaticAllocation>false</rasd:AutomaticAllocation>
        <rasd:Description>for an Ignition config drive</rasd:Description>
        <rasd:ElementName>CD-ROM 0</rasd:ElementName>
        <rasd:InstanceID>6</rasd:InstanceID>
        <rasd:Parent>4</rasd:Parent>
        <rasd:ResourceType>15</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>
        <rasd:Connection>VM Network</rasd:Connection>
        <rasd:ElementName>ethernet 0</rasd:ElementName>
        <rasd:InstanceID>7</rasd:InstanceID>
        <rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>
        <rasd:ResourceType>10</rasd:ResourceType>
      </Item>
      <vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="%s"/>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
`
