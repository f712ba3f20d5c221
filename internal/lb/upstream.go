package lb

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// upstream is the connection pool to the targets of a group. Two
// implementations: pool, an HTTP/1.1 client that does all of a request's
// work on the calling goroutine (plain HTTP targets, the common case), and
// stdTransport, net/http's Transport (HTTPS targets, HTTP/2).
type upstream interface {
	// closeIdle closes the idle connections.
	closeIdle()
}

type stdTransport struct{ t *http.Transport }

func (s stdTransport) closeIdle() { s.t.CloseIdleConnections() }

// errHeadersTooLong is a target whose response headers exceed ALB's
// 32 KiB.
var errHeadersTooLong = errors.New("target's response headers exceed 32 KiB")

// pool is an HTTP/1.1 client with keep-alive connections, per target
// address, reused last-in first-out. A request is written and its
// response read on the caller's goroutine: no goroutine hand-off per
// request, which is most of what a proxy in front of fast targets spends.
type pool struct {
	dialer  net.Dialer
	idle    time.Duration
	maxIdle int

	mu    sync.Mutex
	conns map[string][]*upConn
}

func newPool(k transportKey) *pool {
	return &pool{
		dialer:  net.Dialer{Timeout: k.connect, KeepAlive: 30 * time.Second},
		idle:    k.idle,
		maxIdle: 1024,
		conns:   map[string][]*upConn{},
	}
}

// upConn is a connection to a target.
type upConn struct {
	p    *pool
	addr string
	c    net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	// reused is set once the connection served a request.
	reused    bool
	idleSince time.Time
	// deadline is the read deadline last set by Read.
	deadline time.Time
}

// Read reads from the connection with the idle timeout as deadline: a
// target that sends nothing for that long, headers or body, times out
// (up to deadlineSlack sooner: the deadline moves only once it is that
// stale).
func (u *upConn) Read(b []byte) (int, error) {
	if d := time.Now().Add(u.p.idle); d.Sub(u.deadline) > deadlineSlack(u.p.idle) {
		u.deadline = d
		_ = u.c.SetReadDeadline(d)
	}
	return u.c.Read(b)
}

func (u *upConn) close() { _ = u.c.Close() }

// alive reports whether an idle connection is still open: the target has
// not closed it (its keep-alive timeout) nor sent anything unasked. It
// costs a system call, so the pool spends it only on requests with a body,
// which cannot be retried on another connection.
func (u *upConn) alive() bool {
	if u.br.Buffered() > 0 {
		return false
	}
	sc, ok := u.c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	open := true
	var b [1]byte
	_ = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		open = n < 0 && (err == syscall.EAGAIN || err == syscall.EWOULDBLOCK)
		return true
	})
	return open
}

// get returns an idle connection to addr, or nil.
func (p *pool) get(addr string, now time.Time) *upConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	list := p.conns[addr]
	for len(list) > 0 {
		u := list[len(list)-1]
		list[len(list)-1] = nil
		list = list[:len(list)-1]
		if now.Sub(u.idleSince) < p.idle {
			p.conns[addr] = list
			return u
		}
		u.close()
	}
	delete(p.conns, addr)
	return nil
}

// put returns a connection after a complete exchange; the oldest idle
// connection to the address is closed when it has idled too long.
func (p *pool) put(u *upConn) {
	u.idleSince = time.Now()
	u.reused = true
	p.mu.Lock()
	list := p.conns[u.addr]
	if len(list) >= p.maxIdle {
		p.mu.Unlock()
		u.close()
		return
	}
	if len(list) > 0 && u.idleSince.Sub(list[0].idleSince) >= p.idle {
		list[0].close()
		list = append(list[:0], list[1:]...)
	}
	p.conns[u.addr] = append(list, u)
	p.mu.Unlock()
}

func (p *pool) closeIdle() {
	p.mu.Lock()
	conns := p.conns
	p.conns = map[string][]*upConn{}
	p.mu.Unlock()
	for _, list := range conns {
		for _, u := range list {
			u.close()
		}
	}
}

func (p *pool) dial(ctx context.Context, addr string) (*upConn, error) {
	c, err := p.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c = fast(c)
	u := &upConn{p: p, addr: addr, c: c}
	u.br = bufio.NewReaderSize(u, 16<<10)
	u.bw = bufio.NewWriterSize(c, 16<<10)
	return u, nil
}

// isStale reports whether err is what a request on a connection the
// target closed while idle meets.
func isStale(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

var aLongTimeAgo = time.Unix(1, 0)

// upgraded is the connection of a 101 response, for the tunnel.
type upgraded struct{ u *upConn }

func (x *upgraded) Read(p []byte) (int, error)  { return x.u.br.Read(p) }
func (x *upgraded) Write(p []byte) (int, error) { return x.u.c.Write(p) }
func (x *upgraded) Close() error                { return x.u.c.Close() }
