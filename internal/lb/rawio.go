//go:build linux && !race

package lb

import (
	"syscall"
	"unsafe"
)

// rawRead and rawWrite are read(2) and send(2) as raw system calls, which
// the scheduler does not account as calls that may block (fastconn.go).
// send has MSG_NOSIGNAL: a peer that closed gets EPIPE without a SIGPIPE.
// p is never empty.

// rawSyscalls reports that this build makes raw system calls.
const rawSyscalls = true

func rawRead(fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}

func rawWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), syscall.MSG_NOSIGNAL, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}
