// Package e2e holds nodebake's end-to-end tests: they build real images
// with the imagebuild command, check them with the standard tools and boot
// them under QEMU with OVMF. They need root (mmdebstrap) and the packages
// ci/deps.sh installs; cold, with the kit and the Debian bases to build,
// they take about an hour, the two-node cluster about 25 minutes of it.
// `go test -short` skips them.
package e2e
