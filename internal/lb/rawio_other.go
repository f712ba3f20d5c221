//go:build !linux || race

package lb

import (
	"errors"
	"syscall"
)

// rawSyscalls reports that this build makes no raw system calls.
const rawSyscalls = false

// rawRead and rawWrite go through the syscall package where raw system
// calls are not used: other systems, and race-detector builds, whose
// syscall package tells the detector about the memory a read fills and
// orders reads after the writes they see. fastConn's logic is the same.

func rawRead(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Read(int(fd), p)
	return max(n, 0), errnoOf(err)
}

func rawWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Write(int(fd), p)
	return max(n, 0), errnoOf(err)
}

func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	if err != nil && !errors.As(err, &e) {
		return syscall.EIO
	}
	return e
}
