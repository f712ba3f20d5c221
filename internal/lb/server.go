package lb

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// The listeners serve HTTP/1.1 themselves, one goroutine per connection
// doing all of a request's work, reading and writing through per-connection
// buffers (HTTP/2 goes to net/http's server, see listener.go). This is the
// hot path: net/http's server spends a goroutine and a hand-off per request
// on watching the connection while the handler runs, which in front of fast
// targets costs as much as the proxying itself. The price is that a client
// that leaves is noticed when its answer is written, not before.

// Connection states, for graceful close.
const (
	connActive int32 = iota
	connIdle
)

// h1conn is one client connection served as HTTP/1.x.
type h1conn struct {
	l      *listener
	c      net.Conn
	remote string
	tls    *tls.ConnectionState
	lim    limitedReader
	br     *bufio.Reader
	bw     *bufio.Writer
	state  atomic.Int32
	w      h1writer
	req    simpleRequest
	// deadline is the read deadline last set by serveOne (zero: unknown).
	deadline time.Time
}

// limitedReader reads from a connection and fails once n bytes have been
// read while n is positive: it bounds request headers.
type limitedReader struct {
	c net.Conn
	n int
}

var errHeadersTooLarge = errors.New("request headers too large")

func (r *limitedReader) Read(p []byte) (int, error) {
	if r.n < 0 {
		return 0, errHeadersTooLarge
	}
	if r.n > 0 && len(p) > r.n {
		p = p[:r.n]
	}
	n, err := r.c.Read(p)
	if r.n > 0 {
		if r.n -= n; r.n == 0 {
			r.n = -1
		}
	}
	return n, err
}

// serveH1 serves requests on c until the client closes it, it idles for
// the idle timeout, a request asks to close it, or the listener closes.
func (l *listener) serveH1(c net.Conn, ts *tls.ConnectionState) {
	hc := &h1conn{l: l, c: c, remote: c.RemoteAddr().String(), tls: ts}
	hc.lim.c = c
	hc.br = bufio.NewReaderSize(&hc.lim, 4<<10)
	hc.bw = bufio.NewWriterSize(c, 4<<10)
	hc.w.hc = hc
	hc.w.header = make(http.Header, 16)
	hc.w.values = make([]string, 32)
	if !l.track(hc) {
		_ = c.Close()
		return
	}
	defer l.untrack(hc)
	defer c.Close()
	for hc.serveOne() {
	}
}

// serveOne reads and answers one request; it reports whether the
// connection stays open for another.
func (hc *h1conn) serveOne() bool {
	l := hc.l
	rt := l.routes.Load()
	// Idle: a closing listener wakes idle connections by moving their
	// deadline to the past, so check after publishing the state.
	hc.state.Store(connIdle)
	hc.refreshDeadline(rt.lb.idleTimeout)
	if l.isClosing() {
		return false
	}
	hc.lim.n = maxRequestLine + maxRequestHeaderBytes
	if _, err := hc.br.Peek(1); err != nil {
		return false
	}
	hc.state.Store(connActive)
	var err error
	req := hc.req.readSimple(hc.br) // the common case, without allocations (request.go)
	if req == nil {
		req, err = http.ReadRequest(hc.br)
	}
	hc.lim.n = 0
	if err != nil {
		var ne net.Error
		if !errors.Is(err, io.EOF) && !(errors.As(err, &ne) && ne.Timeout()) {
			hc.reject(rt, http.StatusBadRequest)
		}
		return false
	}
	// The read deadline set above stays: nothing reads the connection
	// until the next request but the body, whose reads renew it.
	rt = l.routes.Load() // the routes of when the request arrived
	req.RemoteAddr = hc.remote
	req.TLS = hc.tls
	keepAlive := req.ProtoAtLeast(1, 1) && !req.Close
	if req.ProtoAtLeast(1, 1) && !validHost(req.Host) {
		hc.reject(rt, http.StatusBadRequest)
		return false
	}
	var body *clientBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &clientBody{rc: req.Body, c: hc.c, idle: rt.lb.idleTimeout}
		if req.ProtoAtLeast(1, 1) && listed(req.Header["Expect"], "100-continue") {
			body.hc = hc
		}
		delete(req.Header, "Expect")
		req.Body = body
		hc.deadline = time.Time{} // the body's reads move it
	}

	w := &hc.w
	w.reset(req, keepAlive)
	if !hc.handle(w, req, rt) || w.hijacked {
		return false
	}
	w.finish()
	if err := hc.bw.Flush(); err != nil || w.closeAfter {
		return false
	}
	if body != nil && !body.drain() {
		return false
	}
	return !l.isClosing()
}

// refreshDeadline moves the read deadline to the idle timeout from now,
// unless the one set before is within deadlineSlack of that: setting a
// deadline updates a runtime timer, which a busy keep-alive connection
// would otherwise do on every request.
func (hc *h1conn) refreshDeadline(idle time.Duration) {
	d := time.Now().Add(idle)
	if d.Before(hc.deadline) || d.Sub(hc.deadline) > deadlineSlack(idle) {
		hc.deadline = d
		_ = hc.c.SetReadDeadline(d)
	}
}

// deadlineSlack is how much earlier than the idle timeout a connection's
// reads may time out, for setting their deadline less often: up to a
// second, and an eighth of short timeouts.
func deadlineSlack(idle time.Duration) time.Duration {
	return min(time.Second, idle/8)
}

// handle runs the handler; it reports false when the handler aborted the
// response (http.ErrAbortHandler), which closes the connection.
func (hc *h1conn) handle(w *h1writer, req *http.Request, rt *routes) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				hc.l.b.log.Error("handler panic", "load_balancer", rt.lb.id, "listener", rt.listener, "panic", v)
			}
			ok = false
		}
	}()
	hc.l.handle(w, req, rt)
	return true
}

// reject answers a request that could not be read, and the connection
// closes.
func (hc *h1conn) reject(rt *routes, status int) {
	w := &hc.w
	w.reset(nil, false)
	writeError(w, status)
	w.finish()
	_ = hc.bw.Flush()
	rt.metrics.answered(status)
}

// validHost reports whether an HTTP/1.1 Host header is present and free of
// characters that have no place in one.
func validHost(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; c <= ' ' || c >= 0x7f || c == '/' || c == '\\' || c == '@' {
			return false
		}
	}
	return true
}

// clientBody is a request body: it remembers whether it was read to the
// end, sends 100 Continue before the first read when the client expects
// it, and ignores Close so the connection can drain what is left.
type clientBody struct {
	rc   io.ReadCloser
	c    net.Conn
	idle time.Duration
	hc   *h1conn // set while a 100 Continue is owed
	eof  bool
}

// Read reads the body; a client that sends nothing for the idle timeout
// times out.
func (b *clientBody) Read(p []byte) (int, error) {
	if b.hc != nil {
		_, _ = b.hc.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		_ = b.hc.bw.Flush()
		b.hc = nil
	}
	_ = b.c.SetReadDeadline(time.Now().Add(b.idle))
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *clientBody) Close() error { return nil }

// drain reads what is left of the body, up to 256 KiB, so the next request
// can be read; it reports false when the connection must close instead.
func (b *clientBody) drain() bool {
	if b.eof {
		return true
	}
	if b.hc != nil {
		// The client waits for a 100 Continue that will not come.
		return false
	}
	n, err := io.CopyN(io.Discard, b.rc, 256<<10)
	return err == io.EOF && n < 256<<10
}

// h1writer is the http.ResponseWriter of an h1conn; one per connection,
// reset for each request.
type h1writer struct {
	hc     *h1conn
	req    *http.Request
	header http.Header
	// values backs the value slices of a proxied response's header, whose
	// references reset drops.
	values      []string
	status      int
	wroteHeader bool
	bodyOK      bool
	chunked     bool
	keepAlive   bool
	closeAfter  bool
	hijacked    bool
}

func (w *h1writer) reset(req *http.Request, keepAlive bool) {
	clear(w.header)
	w.req, w.status = req, 0
	w.wroteHeader, w.bodyOK, w.chunked, w.hijacked = false, false, false, false
	w.keepAlive, w.closeAfter = keepAlive, !keepAlive
}

func (w *h1writer) Header() http.Header { return w.header }

// WriteHeader writes the status line and headers to the connection's
// buffer. The body is framed by the Content-Length the handler set or,
// without one, chunked (HTTP/1.1) or ended by closing the connection.
func (w *h1writer) WriteHeader(code int) {
	if w.wroteHeader || w.hijacked {
		return
	}
	w.wroteHeader, w.status = true, code
	h := w.header
	w.bodyOK = code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified &&
		(w.req == nil || w.req.Method != http.MethodHead)
	if listed(h["Connection"], "close") {
		w.closeAfter = true
	}
	_, hasLength := h["Content-Length"]
	if code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified && !hasLength &&
		!(w.req != nil && w.req.Method == http.MethodHead) {
		if w.req != nil && w.req.ProtoAtLeast(1, 1) {
			w.chunked = true
		} else {
			w.closeAfter = true
		}
	}
	bw := w.hc.bw
	bw.WriteString("HTTP/1.1 ")
	writeStatus(bw, code)
	for k, vv := range h {
		if k == "Transfer-Encoding" || k == "Connection" || strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	if _, ok := h["Date"]; !ok {
		bw.WriteString("Date: ")
		bw.WriteString(httpDate())
		bw.WriteString("\r\n")
	}
	if w.chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if w.closeAfter {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
}

func writeStatus(bw *bufio.Writer, code int) {
	if text, ok := statusLines[code]; ok {
		bw.WriteString(text)
		return
	}
	bw.WriteString(strconv.Itoa(code))
	bw.WriteByte(' ')
	bw.WriteString(http.StatusText(code))
	bw.WriteString("\r\n")
}

// statusLines are the common status lines after "HTTP/1.1 ".
var statusLines = func() map[int]string {
	m := map[int]string{}
	for _, c := range []int{200, 201, 204, 206, 301, 302, 304, 307, 308, 400, 401, 403, 404, 405, 413, 500, 502, 503, 504} {
		m[c] = strconv.Itoa(c) + " " + http.StatusText(c) + "\r\n"
	}
	return m
}()

func (w *h1writer) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.bodyOK || len(p) == 0 {
		return len(p), nil
	}
	bw := w.hc.bw
	if w.chunked {
		bw.WriteString(strconv.FormatInt(int64(len(p)), 16))
		bw.WriteString("\r\n")
		n, err := bw.Write(p)
		bw.WriteString("\r\n")
		return n, err
	}
	return bw.Write(p)
}

// Flush sends what is buffered to the client.
func (w *h1writer) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.hijacked {
		_ = w.hc.bw.Flush()
	}
}

// Hijack hands the connection to the caller (the WebSocket tunnel).
func (w *h1writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.wroteHeader {
		return nil, nil, errors.New("lb: hijack after the response started")
	}
	w.hijacked = true
	_ = w.hc.c.SetDeadline(time.Time{})
	return w.hc.c, bufio.NewReadWriter(w.hc.br, w.hc.bw), nil
}

// finish ends the response: the last chunk and the trailers.
func (w *h1writer) finish() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.chunked {
		return
	}
	bw := w.hc.bw
	bw.WriteString("0\r\n")
	for k, vv := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			for _, v := range vv {
				bw.WriteString(name)
				bw.WriteString(": ")
				bw.WriteString(v)
				bw.WriteString("\r\n")
			}
		}
	}
	bw.WriteString("\r\n")
}

// httpDate is the current time as a Date header, computed once a second.
func httpDate() string {
	now := time.Now()
	if d := dateCache.Load(); d != nil && d.sec == now.Unix() {
		return d.text
	}
	d := &cachedDate{sec: now.Unix(), text: now.UTC().Format(http.TimeFormat)}
	dateCache.Store(d)
	return d.text
}

type cachedDate struct {
	sec  int64
	text string
}

var dateCache atomic.Pointer[cachedDate]
