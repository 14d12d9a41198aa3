package command

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill a background program (QEMU) when
// nodebake dies, however it dies, so no virtual machine outlives its test.
func dieWithParent(cmd *exec.Cmd) {
	sysProcAttr(cmd).Pdeathsig = syscall.SIGKILL
}
