// Package e2e holds nodebake's end-to-end tests: they build real images
// with the imagebuild command, check them with the standard tools and boot
// them under QEMU with OVMF. They need root (mmdebstrap), the packages
// ci/deps.sh installs, and about 15 minutes cold; `go test -short` skips
// them.
package e2e
