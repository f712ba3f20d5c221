package lb

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Header limits of ALB (Quotas for your Application Load Balancers: HTTP
// headers).
const (
	maxRequestLine         = 16 << 10
	maxHeaderLine          = 16 << 10
	maxRequestHeaderBytes  = 64 << 10
	maxResponseHeaderBytes = 32 << 10
)

// BindError is a listener that could not bind its address.
type BindError struct {
	LoadBalancerID string
	ListenerID     string
	// Addr is the address it tried.
	Addr string
	// Err is the system's error (errors.Is(err, syscall.EADDRINUSE) ...).
	Err error
}

func (e *BindError) Error() string {
	why := e.Err.Error()
	switch {
	case errors.Is(e.Err, syscall.EADDRINUSE):
		why = "the address is already in use by another listener or program"
	case errors.Is(e.Err, syscall.EACCES):
		why = "binding a port below 1024 needs root or CAP_NET_BIND_SERVICE (or a lower net.ipv4.ip_unprivileged_port_start)"
	case errors.Is(e.Err, syscall.EADDRNOTAVAIL):
		why = "the address is not assigned to this host"
	}
	return fmt.Sprintf("load balancer %q listener %q: cannot listen on %s: %s", e.LoadBalancerID, e.ListenerID, e.Addr, why)
}

// Unwrap returns the system's error.
func (e *BindError) Unwrap() error { return e.Err }

// listener is the runtime of one bound listener. One goroutine accepts
// (pump) and starts a goroutine per connection: HTTP/1.x is served by
// serveH1 (server.go); a TLS connection that negotiated HTTP/2 goes to the
// current h2 generation, a net/http server whose idle timeout is fixed.
// Routing and the certificate are read through atomic pointers, so Apply
// changes them under live connections.
type listener struct {
	b        *Balancer
	lbID, id string
	protocol string
	// bind is the address asked for; addr the one bound.
	bind, addr string
	port       string
	ln         net.Listener
	tlsConf    *tls.Config
	metrics    *listenerMetrics

	routes atomic.Pointer[routes]
	cert   atomic.Pointer[tls.Certificate]

	closing   atomic.Bool
	closed    chan struct{}
	closeOnce sync.Once
	// gone is closed once the listener is closing and has no HTTP/1
	// connection left.
	gone chan struct{}

	mu    sync.Mutex
	conns map[*h1conn]struct{}
	// h2 serves the HTTP/2 connections; nil until the first.
	h2 *generation
}

// generation is a net/http server for HTTP/2 connections, fed by a
// channel.
type generation struct {
	idle  time.Duration
	srv   *http.Server
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

// bindListener binds a new listener.
func (b *Balancer) bindListener(lb *lbSettings, l *Listener) (*listener, error) {
	addr := net.JoinHostPort(lb.address, strconv.Itoa(l.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Err != nil {
			err = oe.Err
			var se *os.SyscallError
			if errors.As(err, &se) {
				err = se.Err
			}
		}
		return nil, &BindError{LoadBalancerID: lb.id, ListenerID: l.ID, Addr: addr, Err: err}
	}
	bound := ln.Addr().(*net.TCPAddr)
	x := &listener{
		b: b, lbID: lb.id, id: l.ID, protocol: l.Protocol,
		bind: addr, addr: bound.String(), port: strconv.Itoa(bound.Port),
		ln: ln, closed: make(chan struct{}), gone: make(chan struct{}), conns: map[*h1conn]struct{}{},
		metrics: b.metrics.listener(lb.id, l.ID),
	}
	if l.Protocol == ProtocolHTTPS {
		x.tlsConf = &tls.Config{
			MinVersion:         tls.VersionTLS12,
			GetConfigForClient: x.configForClient,
		}
	}
	b.log.Info("listener bound", "load_balancer", lb.id, "listener", l.ID, "protocol", l.Protocol, "addr", x.addr)
	return x, nil
}

// configForClient offers HTTP/2 through ALPN when the load balancer
// currently enables it, with the current certificate.
func (l *listener) configForClient(*tls.ClientHelloInfo) (*tls.Config, error) {
	cert := l.cert.Load()
	if cert == nil {
		return nil, errors.New("no certificate")
	}
	next := []string{"http/1.1"}
	if l.routes.Load().lb.http2 {
		next = []string{"h2", "http/1.1"}
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*cert}, NextProtos: next}, nil
}

// pump accepts connections until the listener closes.
func (l *listener) pump() {
	var delay time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if l.isClosing() {
				return
			}
			// A temporary failure (out of file descriptors): back off as
			// net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			l.b.log.Warn("accept failed", "load_balancer", l.lbID, "listener", l.id, "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-l.closed:
				return
			}
			continue
		}
		delay = 0
		c = fast(c)
		if l.tlsConf == nil {
			l.b.wg.Go(func() { l.serveH1(c, nil) })
		} else {
			l.b.wg.Go(func() { l.serveTLS(c) })
		}
	}
}

// serveTLS completes the handshake (within the idle timeout) and serves
// the connection as HTTP/2 or HTTP/1.1, as negotiated.
func (l *listener) serveTLS(raw net.Conn) {
	c := tls.Server(raw, l.tlsConf)
	idle := l.routes.Load().lb.idleTimeout
	_ = raw.SetDeadline(time.Now().Add(idle))
	if err := c.Handshake(); err != nil {
		l.b.log.Debug("TLS handshake failed", "load_balancer", l.lbID, "listener", l.id, "remote", raw.RemoteAddr().String(), "err", err)
		_ = c.Close()
		return
	}
	_ = raw.SetDeadline(time.Time{})
	st := c.ConnectionState()
	if st.NegotiatedProtocol == "h2" {
		l.serveH2(c, idle)
		return
	}
	l.serveH1(c, &st)
}

// serveH2 hands an HTTP/2 connection to the generation of the current idle
// timeout, starting one when needed.
func (l *listener) serveH2(c *tls.Conn, idle time.Duration) {
	l.mu.Lock()
	if l.isClosing() {
		l.mu.Unlock()
		_ = c.Close()
		return
	}
	gen := l.h2
	if gen == nil || gen.idle != idle {
		if gen != nil {
			l.retire(gen)
		}
		gen = l.newGeneration(idle)
		l.h2 = gen
	}
	l.mu.Unlock()
	select {
	case gen.conns <- c:
	case <-gen.done:
		_ = c.Close()
	}
}

func (l *listener) newGeneration(idle time.Duration) *generation {
	gen := &generation{idle: idle, conns: make(chan net.Conn), done: make(chan struct{})}
	gen.srv = &http.Server{
		Handler:           l,
		ReadHeaderTimeout: idle,
		IdleTimeout:       idle,
		MaxHeaderBytes:    maxRequestHeaderBytes,
		ConnState:         l.connState,
		ErrorLog:          slog.NewLogLogger(l.b.log.Handler(), slog.LevelDebug),
	}
	gl := &genListener{l: l, gen: gen}
	l.b.wg.Go(func() { _ = gen.srv.Serve(gl) })
	return gen
}

// genListener is the net.Listener of an h2 generation.
type genListener struct {
	l   *listener
	gen *generation
}

func (g *genListener) Accept() (net.Conn, error) {
	select {
	case <-g.gen.done:
		return nil, net.ErrClosed
	case c := <-g.gen.conns:
		return c, nil
	}
}

func (g *genListener) Close() error {
	g.gen.once.Do(func() { close(g.gen.done) })
	return nil
}

func (g *genListener) Addr() net.Addr { return g.l.ln.Addr() }

// retire shuts an h2 generation down gracefully: idle connections close
// at once, busy ones after their streams, and the rest after the grace
// period.
func (l *listener) retire(gen *generation) {
	gen.once.Do(func() { close(gen.done) })
	grace := l.b.cfg.ShutdownGrace
	l.b.wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		if err := gen.srv.Shutdown(ctx); err != nil {
			_ = gen.srv.Close()
		}
	})
}

func (l *listener) connState(_ net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		l.metrics.connOpened()
	case http.StateClosed, http.StateHijacked:
		l.metrics.connClosed()
	}
}

func (l *listener) isClosing() bool { return l.closing.Load() }

// track registers an HTTP/1 connection; it reports false when the
// listener is closing.
func (l *listener) track(hc *h1conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.isClosing() {
		return false
	}
	l.conns[hc] = struct{}{}
	l.metrics.connOpened()
	return true
}

func (l *listener) untrack(hc *h1conn) {
	l.mu.Lock()
	delete(l.conns, hc)
	if len(l.conns) == 0 && l.isClosing() {
		close(l.gone)
	}
	l.mu.Unlock()
	l.metrics.connClosed()
}

// close stops accepting, closes the idle connections at once and the busy
// ones after their response, and closes whatever is left after the grace
// period.
func (l *listener) close() {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closing.Store(true)
		close(l.closed)
		_ = l.ln.Close()
		for hc := range l.conns {
			if hc.state.Load() == connIdle {
				_ = hc.c.SetReadDeadline(aLongTimeAgo)
			}
		}
		if l.h2 != nil {
			l.retire(l.h2)
		}
		if len(l.conns) == 0 {
			close(l.gone)
		}
		l.mu.Unlock()
		grace := l.b.cfg.ShutdownGrace
		l.b.wg.Go(func() {
			timer := time.NewTimer(grace)
			defer timer.Stop()
			select {
			case <-l.gone:
			case <-timer.C:
				l.mu.Lock()
				for hc := range l.conns {
					_ = hc.c.Close()
				}
				l.mu.Unlock()
			}
		})
		l.b.log.Info("listener closed", "load_balancer", l.lbID, "listener", l.id, "addr", l.addr)
	})
}
