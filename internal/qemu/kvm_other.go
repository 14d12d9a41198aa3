//go:build !linux

package qemu

import "errors"

// kvmRuns: KVM is Linux's.
func kvmRuns(device string) error {
	return errors.New("kvm: not on Linux")
}
