// Package e2e holds nodebake's end-to-end tests: they build real images
// with the imagebuild command, check them with the standard tools and boot
// them under QEMU with OVMF and SeaBIOS. They need root (mmdebstrap) and
// the packages ci/deps.sh installs; cold, with the kit and the bookworm
// base to build, they take about an hour. Those that do not fit make
// test's budget are named TestLong and run only in make test-long.
// `go test -short` skips them.
package e2e
