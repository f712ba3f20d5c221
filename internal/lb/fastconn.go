package lb

import (
	"io"
	"net"
	"os"
	"sync"
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
	// rd and wr are the read and the write in progress. Their run methods
	// are what rc.Read and rc.Write call, bound once in fast: a closure
	// per call would cost three allocations, six per proxied request.
	rd, wr rawOp
}

// rawOp is one read or write on a fastConn: its buffer, what it moved and
// its error. mu keeps a second goroutine reading (writing) the connection
// at the same time from overwriting them.
type rawOp struct {
	mu    sync.Mutex
	p     []byte
	n     int
	errno syscall.Errno
	run   func(fd uintptr) bool
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
	fc := &fastConn{TCPConn: tc, rc: rc}
	fc.rd.run = fc.rd.read
	fc.wr.run = fc.wr.write
	return fc
}

func (c *fastConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	op := &c.rd
	op.mu.Lock()
	op.p, op.n, op.errno = p[:min(len(p), maxRawIO)], 0, 0
	err := c.rc.Read(op.run)
	n, errno := op.n, op.errno
	op.p = nil
	op.mu.Unlock()
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

// read is one attempt of a Read: false parks the goroutine until the
// socket is readable.
func (op *rawOp) read(fd uintptr) bool {
	for {
		op.n, op.errno = rawRead(fd, op.p)
		switch op.errno {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			op.errno = 0
			return false
		}
		return true
	}
}

func (c *fastConn) Write(p []byte) (int, error) {
	op := &c.wr
	op.mu.Lock()
	op.p, op.n, op.errno = p, 0, 0
	err := c.rc.Write(op.run)
	n, errno := op.n, op.errno
	op.p = nil
	op.mu.Unlock()
	switch {
	case err != nil:
		return n, err
	case errno != 0:
		return n, c.opError("write", errno)
	}
	return n, nil
}

// write is one attempt of a Write: false parks the goroutine until the
// socket is writable, to go on where it stopped.
func (op *rawOp) write(fd uintptr) bool {
	for op.n < len(op.p) {
		k, e := rawWrite(fd, op.p[op.n:min(len(op.p), op.n+maxRawIO)])
		switch e {
		case 0:
			op.n += k
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			op.errno = e
			return true
		}
	}
	return true
}

// opError is the error net.TCPConn returns for a failed system call, so
// errors.Is(err, syscall.ECONNRESET) and the like hold as they do there.
func (c *fastConn) opError(op string, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError(op, errno)}
}

// noRaw turns fastConn off (BERTH_LB_NO_RAWIO=1 in the environment), for
// measuring what it buys: go run ./bench/lb with and without it.
var noRaw = os.Getenv("BERTH_LB_NO_RAWIO") != ""
