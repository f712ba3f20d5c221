package lb

import (
	"io"
	"net"
	"os"
	"syscall"
)

// fastConn is a TCP connection whose reads and writes skip the Go
// scheduler's system-call bookkeeping. A read or write on a non-blocking
// socket never blocks, so fastConn issues it as a raw system call
// (rawio.go) inside the connection's syscall.RawConn: when the socket is
// not ready the goroutine parks on the runtime's network poller, deadlines
// included, exactly as net.TCPConn's own Read and Write do.
//
// What it saves: a system call made through the syscall package tells the
// scheduler it may block (entersyscall/exitsyscall). That can wake the
// runtime's monitor thread when it was asleep and, when the call outlasts
// the monitor's 20 µs tick (loopback writes on a small virtual machine
// do), hand the processor to another thread and back: context switches
// that cost far more than the copy itself. Measured on a 2-vCPU VM, a
// minimal Go proxy's CPU per request fell from 130 µs to 57 µs with raw
// calls, and in bench/lb Berth's added p50 latency at one connection fell
// from 116-140 µs to 66-69 µs (docs/benchmarks.md).
//
// Every other method is the TCP connection's. Reads and writes are capped
// at maxRawIO bytes per system call, so none holds its processor for long.
// BERTH_LB_NO_RAWIO=1 in the environment turns fastConn off (noRaw).
type fastConn struct {
	*net.TCPConn
	rc syscall.RawConn
}

// maxRawIO bounds the bytes one raw read or write moves.
const maxRawIO = 64 << 10

// fast returns c as a fastConn when it is a TCP connection, else c.
func fast(c net.Conn) net.Conn {
	if noRaw {
		return c
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &fastConn{TCPConn: tc, rc: rc}
}

func (c *fastConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	p = p[:min(len(p), maxRawIO)]
	var n int
	var errno syscall.Errno
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			n, errno = rawRead(fd, p)
			switch errno {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false // park until readable
			}
			return true
		}
	})
	switch {
	case err != nil:
		return 0, err // closed, or the deadline passed: net's own errors
	case errno != 0:
		return 0, c.opError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (c *fastConn) Write(p []byte) (int, error) {
	var n int
	var errno syscall.Errno
	err := c.rc.Write(func(fd uintptr) bool {
		for n < len(p) {
			k, e := rawWrite(fd, p[n:min(len(p), n+maxRawIO)])
			switch e {
			case 0:
				n += k
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false // park until writable
			default:
				errno = e
				return true
			}
		}
		return true
	})
	switch {
	case err != nil:
		return n, err
	case errno != 0:
		return n, c.opError("write", errno)
	}
	return n, nil
}

// opError is the error net.TCPConn returns for a failed system call, so
// errors.Is(err, syscall.ECONNRESET) and the like hold as they do there.
func (c *fastConn) opError(op string, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError(op, errno)}
}

// noRaw turns fastConn off (BERTH_LB_NO_RAWIO=1 in the environment), for
// measuring what it buys: go run ./bench/lb with and without it.
var noRaw = os.Getenv("BERTH_LB_NO_RAWIO") != ""
