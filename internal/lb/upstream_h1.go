package lb

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"time"
)

// This file is the pool's request path: the request is written to the
// target straight from the client's (the hop-by-hop headers left out, the
// X-Forwarded-* and X-Amzn-Trace-Id headers added), and the target's
// response headers are parsed straight into the client's response header
// map. No intermediate http.Request, http.Response or header map is built.

// exchangeResult is the outcome of a proxied exchange.
type exchangeResult struct {
	// status is the target's status or, when err is set, the load
	// balancer's answer (502, 504).
	status int
	// took is the time until the target's response headers.
	took time.Duration
	// err is why the exchange failed before the target answered; the
	// client has been sent nothing yet.
	err error
}

var (
	errMalformedResponse = errors.New("malformed response from target")
	errUpgradeRefused    = errors.New("target answered 101 to a request that did not ask to upgrade, or with another protocol")
)

// proxy forwards r to t and writes the target's answer to w, with the
// cookies of af (nil without stickiness) after the target's.
// The target's answers are counted in m as they start.
func (p *pool) proxy(w http.ResponseWriter, r *http.Request, rt *routes, t *target, upgrade string, now time.Time, m *pairMetrics, af *affinity) exchangeResult {
	hasBody := r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
	dst := w.Header()
	for attempt := 0; ; attempt++ {
		u := p.get(t.addr, time.Now())
		for hasBody && u != nil && !u.alive() {
			u.close()
			u = p.get(t.addr, time.Now())
		}
		if u == nil {
			var err error
			if u, err = p.dial(r.Context(), t.addr); err != nil {
				return exchangeResult{status: statusFor(err), err: err}
			}
		}
		start := time.Now()
		stop := func() bool { return true }
		if ctx := r.Context(); ctx.Done() != nil {
			// A client that leaves (HTTP/2) aborts the exchange.
			c := u.c
			stop = context.AfterFunc(ctx, func() { _ = c.SetDeadline(aLongTimeAgo) })
		}
		err := u.writeRequest(r, rt, upgrade, now, hasBody)
		var head responseHead
		if err == nil {
			var values []string
			if hw, ok := w.(*h1writer); ok {
				values = hw.values
			}
			head, err = u.readHead(dst, r.Method, values)
		}
		if !stop() && err == nil {
			err = r.Context().Err()
		}
		if err != nil {
			u.close()
			clear(dst)
			if u.reused && !hasBody && attempt == 0 && isStale(err) && r.Context().Err() == nil {
				continue
			}
			return exchangeResult{status: statusFor(err), err: err}
		}
		if head.code == http.StatusSwitchingProtocols && (upgrade == "" || !strings.EqualFold(head.upgrade, upgrade)) {
			u.close()
			clear(dst)
			return exchangeResult{status: http.StatusBadGateway, err: errUpgradeRefused}
		}
		if af != nil {
			af.setCookies(dst)
		}
		res := exchangeResult{status: head.code, took: time.Since(start)}
		m.byTarget(res.status, res.took.Seconds())
		if head.code == http.StatusSwitchingProtocols {
			dst["Connection"] = hdrUpgrade
			dst["Upgrade"] = []string{head.upgrade}
			tunnel(w, &upgraded{u: u}, rt, t)
			return res
		}
		w.WriteHeader(head.code)
		p.relayBody(w, u, &head)
		return res
	}
}

// statusFor is the load balancer's answer to a failed exchange: 504 when
// the target did not answer in time, else 502.
func statusFor(err error) int {
	var te interface{ Timeout() bool }
	if errors.As(err, &te) && te.Timeout() {
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

// writeRequest writes the request line, the headers and the body.
func (u *upConn) writeRequest(r *http.Request, rt *routes, upgrade string, now time.Time, hasBody bool) error {
	if hasBody {
		// A target that stops reading the body times out. The headers
		// alone fit in the socket's buffer.
		_ = u.c.SetWriteDeadline(time.Now().Add(u.p.idle))
		defer u.c.SetWriteDeadline(time.Time{})
	}
	bw := u.bw
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	if strings.HasPrefix(r.RequestURI, "/") {
		bw.WriteString(r.RequestURI)
	} else {
		bw.WriteString(r.URL.RequestURI())
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(r.Host)
	bw.WriteString("\r\n")
	in := r.Header
	conn := in["Connection"]
	for k, vv := range in {
		switch k {
		case "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Port", "X-Amzn-Trace-Id", "Content-Length":
			continue
		}
		if hopByHop(k) || (len(conn) > 0 && listed(conn, k)) || (rt.lb.dropInvalid && !validHeaderName(k)) {
			continue
		}
		for _, v := range vv {
			writeHeaderLine(bw, k, v)
		}
	}
	if te := in["Te"]; len(te) > 0 && listed(te, "trailers") {
		bw.WriteString("Te: trailers\r\n")
	}
	if upgrade != "" {
		bw.WriteString("Connection: Upgrade\r\n")
		writeHeaderLine(bw, "Upgrade", upgrade)
	}
	prior := in["X-Forwarded-For"]
	switch rt.lb.xff {
	case XFFRemove:
	case XFFPreserve:
		for _, v := range prior {
			writeHeaderLine(bw, "X-Forwarded-For", v)
		}
	default:
		bw.WriteString("X-Forwarded-For: ")
		for _, v := range prior {
			bw.WriteString(v)
			bw.WriteString(", ")
		}
		bw.WriteString(clientAddr(r.RemoteAddr, rt.lb.xffPort))
		bw.WriteString("\r\n")
	}
	bw.WriteString("X-Forwarded-Proto: ")
	bw.WriteString(rt.scheme)
	bw.WriteString("\r\nX-Forwarded-Port: ")
	bw.WriteString(rt.port)
	bw.WriteString("\r\nX-Amzn-Trace-Id: ")
	bw.Write(appendTraceID(bw.AvailableBuffer(), in["X-Amzn-Trace-Id"], now))
	bw.WriteString("\r\n")
	switch {
	case hasBody && r.ContentLength > 0:
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.FormatInt(r.ContentLength, 10))
		bw.WriteString("\r\n\r\n")
		if err := copyN(bw, r.Body, r.ContentLength); err != nil {
			return err
		}
	case hasBody:
		bw.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		if err := copyChunked(bw, r.Body); err != nil {
			return err
		}
	default:
		if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
			bw.WriteString("Content-Length: 0\r\n")
		}
		bw.WriteString("\r\n")
	}
	return bw.Flush()
}

// writeHeaderLine writes "k: v\r\n", with line breaks in v made spaces.
func writeHeaderLine(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	if strings.ContainsAny(v, "\r\n") {
		v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
	}
	bw.WriteString(v)
	bw.WriteString("\r\n")
}

// errBodyShort is a client that sent less than its Content-Length.
var errBodyShort = errors.New("client request body shorter than its Content-Length")

func copyN(dst io.Writer, src io.Reader, n int64) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for n > 0 {
		chunk := buf
		if int64(len(chunk)) > n {
			chunk = chunk[:n]
		}
		k, err := src.Read(chunk)
		if k > 0 {
			if _, werr := dst.Write(chunk[:k]); werr != nil {
				return werr
			}
			n -= int64(k)
		}
		if err == io.EOF && n > 0 {
			return errBodyShort
		}
		if err != nil && err != io.EOF {
			return err
		}
	}
	return nil
}

func copyChunked(bw *bufio.Writer, src io.Reader) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		k, err := src.Read(buf)
		if k > 0 {
			bw.WriteString(strconv.FormatInt(int64(k), 16))
			bw.WriteString("\r\n")
			if _, werr := bw.Write(buf[:k]); werr != nil {
				return werr
			}
			bw.WriteString("\r\n")
		}
		if err == io.EOF {
			_, werr := bw.WriteString("0\r\n\r\n")
			return werr
		}
		if err != nil {
			return err
		}
	}
}

// responseHead is what readHead learned about a response's framing.
type responseHead struct {
	code      int
	length    int64 // -1 unknown
	chunked   bool
	closeConn bool
	noBody    bool
	upgrade   string
}

// readHead reads a response's status line and headers, the headers into
// dst (hop-by-hop ones left out), skipping interim 1xx responses other
// than 101. The value slices of dst are backed by values when it is large
// enough (the caller's to reuse once dst no longer holds them).
func (u *upConn) readHead(dst http.Header, method string, values []string) (responseHead, error) {
	budget := maxResponseHeaderBytes
	for {
		line, err := u.readLine(&budget)
		if err != nil {
			return responseHead{}, err
		}
		f := headFields{h: responseHead{length: -1}, dst: dst, values: values}
		h := &f.h
		if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
			return *h, errMalformedResponse
		}
		minor := line[7]
		code := int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
		if !isDigit(line[9]) || !isDigit(line[10]) || !isDigit(line[11]) || code < 100 || (len(line) > 12 && line[12] != ' ') {
			return *h, errMalformedResponse
		}
		h.code = code
		if minor == '0' {
			h.closeConn = true
		}
		f.interim = code < 200 && code != http.StatusSwitchingProtocols
		if err := u.readFields(&f, &budget); err != nil {
			return *h, err
		}
		if f.interim {
			continue // 100 Continue, 103 Early Hints: the final answer follows
		}
		if minor == '0' && f.keepAlive {
			h.closeConn = false
		}
		for _, tok := range f.connTokens {
			delete(dst, http.CanonicalHeaderKey(tok))
		}
		if h.chunked {
			delete(dst, "Content-Length")
			h.length = -1
		}
		h.noBody = method == http.MethodHead || code < 200 || code == http.StatusNoContent || code == http.StatusNotModified
		if !h.noBody && !h.chunked && h.length < 0 {
			h.closeConn = true // the body ends when the target closes
		}
		return *h, nil
	}
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// readFields reads the header fields after a status line into f. When the
// whole header section is already buffered, as it nearly always is, its
// values are slices of one string and their slices of one array;
// otherwise it is read line by line.
func (u *upConn) readFields(f *headFields, budget *int) error {
	buf, _ := u.br.Peek(u.br.Buffered())
	if len(buf) > *budget {
		buf = buf[:*budget]
	}
	end := -1
	if len(buf) >= 2 && buf[0] == '\r' && buf[1] == '\n' {
		end = 0
	} else if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
		end = i + 2
	}
	// Lines that end in a bare line feed are left to the line reader.
	if n := bytes.Count(buf[:max(end, 0)], []byte("\n")); end >= 0 && n == bytes.Count(buf[:end], []byte("\r\n")) {
		section := string(buf[:end])
		if n > 0 && !f.interim {
			if n <= len(f.values) {
				f.slab = f.values[:n]
			} else {
				f.slab = make([]string, n)
			}
		}
		*budget -= end + 2
		_, _ = u.br.Discard(end + 2)
		for section != "" {
			var line string
			line, section, _ = strings.Cut(section, "\r\n")
			if err := f.field(line); err != nil {
				return err
			}
		}
		return nil
	}
	for {
		line, err := u.readLine(budget)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return nil
		}
		if err := f.field(string(line)); err != nil {
			return err
		}
	}
}

// headFields is the state of reading a response's header fields.
type headFields struct {
	h          responseHead
	dst        http.Header
	interim    bool // a 1xx response other than 101, whose fields are dropped
	connTokens []string
	keepAlive  bool
	// slab backs the value slices of dst, or is empty; it is values when
	// that is large enough.
	slab   []string
	values []string
}

// field takes one header line.
func (f *headFields) field(line string) error {
	name, value, ok := strings.Cut(line, ":")
	if !ok || name == "" {
		return errMalformedResponse
	}
	name = strings.TrimRight(name, " \t")
	value = strings.TrimSpace(value)
	key := headerKey(name)
	h := &f.h
	switch key {
	case "Content-Length":
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n < 0 || (h.length >= 0 && n != h.length) {
			return errMalformedResponse
		}
		h.length = n
	case "Transfer-Encoding":
		if strings.EqualFold(strings.TrimSpace(value[strings.LastIndexByte(value, ',')+1:]), "chunked") {
			h.chunked = true
		} else {
			h.closeConn = true
		}
		return nil
	case "Connection":
		for _, tok := range strings.Split(value, ",") {
			switch tok = strings.TrimSpace(tok); {
			case strings.EqualFold(tok, "close"):
				h.closeConn = true
			case strings.EqualFold(tok, "keep-alive"):
				f.keepAlive = true
			case strings.EqualFold(tok, "upgrade"):
			default:
				f.connTokens = append(f.connTokens, tok)
			}
		}
		return nil
	case "Upgrade":
		h.upgrade = value
		return nil
	case "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te":
		return nil
	}
	if f.interim {
		return nil
	}
	if vv, ok := f.dst[key]; ok || len(f.slab) == 0 {
		f.dst[key] = append(vv, value)
		return nil
	}
	f.slab[0] = value
	f.dst[key] = f.slab[:1:1]
	f.slab = f.slab[1:]
	return nil
}

// readLine reads one line without its line break, within budget bytes of
// headers. The line is valid until the next read.
func (u *upConn) readLine(budget *int) ([]byte, error) {
	line, err := u.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		// A line longer than the buffer: gather it.
		long := append([]byte(nil), line...)
		for err == bufio.ErrBufferFull && len(long) <= *budget {
			line, err = u.br.ReadSlice('\n')
			long = append(long, line...)
		}
		line = long
	}
	if *budget -= len(line); *budget < 0 {
		return nil, errHeadersTooLong
	}
	if err != nil {
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// relayBody copies the response body to the client and returns the
// connection to the pool when the exchange ended cleanly. A body that
// breaks off aborts the client's connection.
func (p *pool) relayBody(w http.ResponseWriter, u *upConn, h *responseHead) {
	if h.noBody || h.length == 0 {
		p.done(u, h.closeConn)
		return
	}
	if h.length > 0 && h.length <= int64(u.br.Buffered()) {
		// The whole body came with the headers: write it from the
		// connection's buffer.
		body, _ := u.br.Peek(int(h.length))
		_, werr := w.Write(body)
		_, _ = u.br.Discard(len(body))
		if werr != nil {
			u.close()
			return
		}
		p.done(u, h.closeConn)
		return
	}
	var src io.Reader
	var limited *io.LimitedReader
	switch {
	case h.chunked:
		src = httputil.NewChunkedReader(u.br)
	case h.length > 0:
		limited = &io.LimitedReader{R: u.br, N: h.length}
		src = limited
	default:
		src = u.br
	}
	werr, rerr := copyTo(w, src, h.length < 0)
	if werr != nil {
		// The client left; what is left of the body stays unread.
		u.close()
		return
	}
	complete := rerr == io.EOF
	switch {
	case complete && h.chunked:
		complete = u.readTrailers(w.Header()) == nil
	case complete && limited != nil:
		complete = limited.N == 0
	}
	if !complete {
		u.close()
		// Send what came, then break the connection: the client sees a
		// truncated body rather than nothing.
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	p.done(u, h.closeConn)
}

// done returns a connection after a complete exchange, or closes it.
func (p *pool) done(u *upConn, closeConn bool) {
	if closeConn || u.br.Buffered() > 0 {
		u.close()
		return
	}
	p.put(u)
}

// readTrailers reads the trailer section after a chunked body into dst as
// trailers.
func (u *upConn) readTrailers(dst http.Header) error {
	budget := maxResponseHeaderBytes
	for {
		line, err := u.readLine(&budget)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return nil
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 {
			return errMalformedResponse
		}
		key := http.TrailerPrefix + headerKey(string(bytes.TrimSpace(line[:i])))
		dst[key] = append(dst[key], string(bytes.TrimSpace(line[i+1:])))
	}
}

// copyTo copies src to the client, flushing after each write when stream
// is set. It returns the write and the read error (io.EOF at the end).
func copyTo(w http.ResponseWriter, src io.Reader, stream bool) (werr, rerr error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var flusher http.Flusher
	if stream {
		flusher, _ = w.(http.Flusher)
	}
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr = w.Write(buf[:n]); werr != nil {
				return werr, nil
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if err != nil {
			return nil, err
		}
	}
}

// headerKey canonicalizes a header name without allocating for the
// common ones.
func headerKey(name string) string {
	switch name {
	case "Content-Type", "content-type":
		return "Content-Type"
	case "Content-Length", "content-length":
		return "Content-Length"
	case "Date", "date":
		return "Date"
	case "Server", "server":
		return "Server"
	case "Connection", "connection":
		return "Connection"
	case "Transfer-Encoding", "transfer-encoding":
		return "Transfer-Encoding"
	case "Keep-Alive", "keep-alive":
		return "Keep-Alive"
	case "Cache-Control", "cache-control":
		return "Cache-Control"
	case "Set-Cookie", "set-cookie":
		return "Set-Cookie"
	case "Location", "location":
		return "Location"
	case "Etag", "ETag", "etag":
		return "Etag"
	case "Last-Modified", "last-modified":
		return "Last-Modified"
	case "Vary", "vary":
		return "Vary"
	case "Upgrade", "upgrade":
		return "Upgrade"
	case "Content-Encoding", "content-encoding":
		return "Content-Encoding"
	case "X-Content-Type-Options", "x-content-type-options":
		return "X-Content-Type-Options"
	}
	return http.CanonicalHeaderKey(name)
}
