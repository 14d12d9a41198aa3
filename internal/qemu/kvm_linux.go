package qemu

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The KVM API's ioctls and exit reasons (linux/kvm.h, x86-64).
const (
	kvmGetAPIVersion       = 0xAE00
	kvmCreateVM            = 0xAE01
	kvmGetVCPUMmapSize     = 0xAE04
	kvmCreateVCPU          = 0xAE41
	kvmSetUserMemoryRegion = 0x4020AE46
	kvmRun                 = 0xAE80
	kvmSetRegs             = 0x4090AE82
	kvmGetSregs            = 0x8138AE83
	kvmSetSregs            = 0x4138AE84

	kvmAPIVersion = 12

	kvmExitIO  = 2
	kvmExitHLT = 5
)

// kvmGuest is real-mode code that proves the vCPU computes and exits:
// mov dx,0x3f8; mov al,2; add al,40; out dx,al; hlt.
var kvmGuest = []byte{0xba, 0xf8, 0x03, 0xb0, 0x02, 0x04, 0x28, 0xee, 0xf4}

const (
	kvmGuestAddr = 0x1000
	kvmGuestPort = 0x3f8
	kvmGuestOut  = 42
)

// kvmRuns proves through the KVM API that device can run a guest: it
// makes a VM and a vCPU, runs kvmGuest, and checks that the vCPU wrote 42
// to the port and then halted. Opening the device is no proof: a device
// that opens may fail every ioctl, or run nothing.
func kvmRuns(device string) error {
	kvm, err := os.OpenFile(device, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("kvm: %w", err)
	}
	defer kvm.Close()
	version, err := ioctl(kvm.Fd(), kvmGetAPIVersion, nil)
	if err != nil {
		return fmt.Errorf("kvm: %s: KVM_GET_API_VERSION: %w", device, err)
	}
	if version != kvmAPIVersion {
		return fmt.Errorf("kvm: %s: API version %d, want %d", device, version, kvmAPIVersion)
	}
	vmfd, err := ioctl(kvm.Fd(), kvmCreateVM, nil)
	if err != nil {
		return fmt.Errorf("kvm: %s: KVM_CREATE_VM: %w", device, err)
	}
	defer unix.Close(int(vmfd))

	mem, err := unix.Mmap(-1, 0, 0x1000, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("kvm: guest memory: %w", err)
	}
	defer unix.Munmap(mem)
	copy(mem, kvmGuest)
	region := struct {
		slot, flags             uint32
		guestPhys, size, uspace uint64
	}{guestPhys: kvmGuestAddr, size: uint64(len(mem)), uspace: uint64(uintptr(unsafe.Pointer(&mem[0])))}
	if _, err := ioctl(vmfd, kvmSetUserMemoryRegion, unsafe.Pointer(&region)); err != nil {
		return fmt.Errorf("kvm: KVM_SET_USER_MEMORY_REGION: %w", err)
	}

	vcpu, err := ioctl(vmfd, kvmCreateVCPU, nil)
	if err != nil {
		return fmt.Errorf("kvm: KVM_CREATE_VCPU: %w", err)
	}
	defer unix.Close(int(vcpu))
	runSize, err := ioctl(kvm.Fd(), kvmGetVCPUMmapSize, nil)
	if err != nil {
		return fmt.Errorf("kvm: KVM_GET_VCPU_MMAP_SIZE: %w", err)
	}
	run, err := unix.Mmap(int(vcpu), 0, int(runSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("kvm: mapping the vCPU: %w", err)
	}
	defer unix.Munmap(run)

	// Real mode, code segment at 0, the guest's first byte next.
	var sregs [312]byte
	if _, err := ioctl(vcpu, kvmGetSregs, unsafe.Pointer(&sregs[0])); err != nil {
		return fmt.Errorf("kvm: KVM_GET_SREGS: %w", err)
	}
	binary.LittleEndian.PutUint64(sregs[0:], 0)  // cs.base
	binary.LittleEndian.PutUint16(sregs[12:], 0) // cs.selector
	if _, err := ioctl(vcpu, kvmSetSregs, unsafe.Pointer(&sregs[0])); err != nil {
		return fmt.Errorf("kvm: KVM_SET_SREGS: %w", err)
	}
	var regs [18]uint64
	regs[16], regs[17] = kvmGuestAddr, 2 // rip, rflags
	if _, err := ioctl(vcpu, kvmSetRegs, unsafe.Pointer(&regs[0])); err != nil {
		return fmt.Errorf("kvm: KVM_SET_REGS: %w", err)
	}

	// The vCPU must exit twice: the port write, then the HLT.
	reason, err := kvmStep(vcpu, run)
	if err != nil {
		return err
	}
	if reason != kvmExitIO {
		return fmt.Errorf("kvm: vCPU could not run: exit reason %d, want a port write (%d)", reason, kvmExitIO)
	}
	port := binary.LittleEndian.Uint16(run[34:])
	offset := binary.LittleEndian.Uint64(run[40:])
	if port != kvmGuestPort || offset >= uint64(len(run)) || run[offset] != kvmGuestOut {
		return fmt.Errorf("kvm: vCPU computed wrongly: wrote %d to port %#x, want %d to %#x",
			run[min(offset, uint64(len(run)-1))], port, kvmGuestOut, kvmGuestPort)
	}
	if reason, err = kvmStep(vcpu, run); err != nil {
		return err
	}
	if reason != kvmExitHLT {
		return fmt.Errorf("kvm: vCPU could not run: exit reason %d, want HLT (%d)", reason, kvmExitHLT)
	}
	return nil
}

// kvmStep runs the vCPU to its next exit and returns the exit reason.
func kvmStep(vcpu uintptr, run []byte) (uint32, error) {
	for {
		_, err := ioctl(vcpu, kvmRun, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("kvm: vCPU could not run: KVM_RUN: %w", err)
		}
		return binary.LittleEndian.Uint32(run[8:]), nil
	}
}

// ioctl converts arg in the system call itself, as unsafe.Pointer's
// rules ask, so that a moved stack cannot leave the kernel a stale address.
func ioctl(fd, req uintptr, arg unsafe.Pointer) (uintptr, error) {
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, req, uintptr(arg))
	if errno != 0 {
		return 0, errno
	}
	return r, nil
}
