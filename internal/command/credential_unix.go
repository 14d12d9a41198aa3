//go:build unix

package command

import (
	"os/exec"
	"syscall"
)

// runAs has the program start as u, with no supplementary groups.
func runAs(cmd *exec.Cmd, u User) {
	sysProcAttr(cmd).Credential = &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: []uint32{}}
}

func sysProcAttr(cmd *exec.Cmd) *syscall.SysProcAttr {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	return cmd.SysProcAttr
}
