package main

import (
	"os"
	"syscall"
)

// F_SETPIPE_SZ and F_GETPIPE_SZ of fcntl(2).
const (
	fSetPipeSz = 1031
	fGetPipeSz = 1032
)

// growPipe asks for a 1 MiB pipe buffer (the default maximum of
// /proc/sys/fs/pipe-max-size), a few thousand targets ahead of the load
// tool instead of the default 64 KiB. It is best effort.
func growPipe(f *os.File) {
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			_, _, _ = syscall.Syscall(syscall.SYS_FCNTL, fd, fSetPipeSz, 1<<20)
		})
	}
}

// pipeSize is the pipe's buffer size, or -1.
func pipeSize(f *os.File) int {
	n := -1
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			if r, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, fGetPipeSz, 0); e == 0 {
				n = int(r)
			}
		})
	}
	return n
}
