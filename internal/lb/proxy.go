package lb

import (
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// ServeHTTP routes one request of the listener that came over HTTP/2.
func (l *listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.handle(w, r, l.routes.Load())
}

// handle routes one request.
func (l *listener) handle(w http.ResponseWriter, r *http.Request, rt *routes) {
	if r.Method == http.MethodTrace || r.Method == http.MethodConnect {
		// ALB answers TRACE with 405; CONNECT has no meaning here.
		writeError(w, http.StatusMethodNotAllowed)
		rt.metrics.answered(http.StatusMethodNotAllowed)
		return
	}
	if !withinLimits(r) {
		writeError(w, http.StatusBadRequest)
		rt.metrics.answered(http.StatusBadRequest)
		return
	}
	a := rt.match(r)
	if a == nil {
		writeError(w, http.StatusServiceUnavailable)
		rt.metrics.answered(http.StatusServiceUnavailable)
		return
	}
	switch a.kind {
	case actForward:
		l.b.forward(w, r, rt, a)
	case actRedirect:
		h := w.Header()
		h["Location"] = []string{a.redirect.location(rt, r)}
		h["Content-Length"] = hdrZero
		w.WriteHeader(a.redirect.status)
		rt.metrics.answered(a.redirect.status)
	case actFixed:
		writeFixed(w, a.fixed)
		rt.metrics.answered(a.fixed.StatusCode)
	}
}

// withinLimits checks ALB's request header limits: 16 KiB for the request
// line and for each header line, 64 KiB for all of them.
func withinLimits(r *http.Request) bool {
	if len(r.Method)+len(r.RequestURI)+len(r.Proto)+2 > maxRequestLine {
		return false
	}
	total := len("Host: ") + len(r.Host) + 2
	for k, vv := range r.Header {
		for _, v := range vv {
			n := len(k) + 2 + len(v)
			if n > maxHeaderLine {
				return false
			}
			total += n + 2
		}
	}
	return total <= maxRequestHeaderBytes
}

// forward sends r to a target of the action's groups and relays the
// answer.
func (b *Balancer) forward(w http.ResponseWriter, r *http.Request, rt *routes, a *action) {
	var wg *weighted
	if a.stick != 0 {
		wg = a.stuckGroup(r.Header["Cookie"])
		if wg != nil && len(wg.g.set.Load().list) == 0 {
			// A group left without targets (blue/green cut over) lets its
			// clients go where the weights send them.
			wg = nil
		}
	}
	if wg == nil {
		wg = a.pickGroup()
	}
	if wg == nil {
		writeError(w, http.StatusServiceUnavailable)
		rt.metrics.answered(http.StatusServiceUnavailable)
		return
	}
	g := wg.g
	conf := g.conf.Load()
	// af stays nil, and costs nothing, without stickiness.
	var af *affinity
	var t *target
	if a.stick != 0 || conf.sticky != nil {
		af = &affinity{now: b.cfg.Now(), st: conf.sticky}
		if a.stick != 0 {
			af.tg, af.tgFor = g, a.stick
		}
		if conf.sticky != nil {
			t = af.stuckTarget(r, rt, g, conf.sticky)
		}
	}
	if t == nil {
		t = g.pick(b.cfg.Now)
	}
	if t == nil {
		writeError(w, http.StatusServiceUnavailable)
		wg.m.byELB(http.StatusServiceUnavailable)
		return
	}
	if af != nil {
		af.t = t
	}
	t.acquire()
	defer t.release()
	upgrade := upgradeOf(r.Header)
	var res exchangeResult
	if p, ok := conf.up.(*pool); ok {
		res = p.proxy(w, r, rt, t, upgrade, b.cfg.Now(), wg.m, af)
	} else {
		res = b.exchangeStd(w, r, rt, t, conf, upgrade, wg.m, af)
	}
	if res.err == nil {
		return
	}
	if r.Context().Err() != nil {
		// The client left (ALB logs 460); nobody to answer.
		wg.m.byELB(460)
		return
	}
	b.log.Debug("target failed", "load_balancer", rt.lb.id, "listener", rt.listener, "target_group", g.id,
		"target", t.id, "status", res.status, "err", res.err)
	writeError(w, res.status)
	wg.m.byELB(res.status)
}

// exchangeStd forwards r through net/http's Transport (HTTPS targets).
// The answer gets the cookies of af (nil without stickiness).
func (b *Balancer) exchangeStd(w http.ResponseWriter, r *http.Request, rt *routes, t *target, conf *groupConf, upgrade string, m *pairMetrics, af *affinity) exchangeResult {
	out := rt.outRequest(r, conf.scheme, t.addr, upgrade, b.cfg.Now())
	start := time.Now()
	resp, err := conf.up.(stdTransport).t.RoundTrip(out)
	if err != nil {
		return exchangeResult{status: statusFor(err), err: err}
	}
	res := exchangeResult{status: resp.StatusCode, took: time.Since(start)}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		back, ok := resp.Body.(io.ReadWriteCloser)
		if !ok || upgrade == "" || !strings.EqualFold(resp.Header.Get("Upgrade"), upgrade) {
			_ = resp.Body.Close()
			return exchangeResult{status: http.StatusBadGateway, err: errUpgradeRefused}
		}
		m.byTarget(res.status, res.took.Seconds())
		dst := w.Header()
		for k, vv := range resp.Header {
			dst[k] = vv
		}
		if af != nil {
			af.setCookies(dst)
		}
		tunnel(w, back, rt, t)
		return res
	}
	m.byTarget(res.status, res.took.Seconds())
	relay(w, resp, af)
	return res
}

// upgradeOf is the protocol a request asks to upgrade to, or "".
func upgradeOf(h http.Header) string {
	if up := h["Upgrade"]; len(up) > 0 && listed(h["Connection"], "upgrade") {
		return up[0]
	}
	return ""
}

// outRequest is the request to send to the target at addr.
func (rt *routes) outRequest(r *http.Request, scheme, addr, upgrade string, now time.Time) *http.Request {
	out := new(http.Request)
	*out = *r
	u := *r.URL
	u.Scheme, u.Host = scheme, addr
	out.URL = &u
	out.RequestURI = ""
	out.Close = false
	out.Proto, out.ProtoMajor, out.ProtoMinor = "HTTP/1.1", 1, 1
	if r.ContentLength == 0 {
		out.Body, out.GetBody = nil, nil
	}
	out.Header = rt.outHeader(r, upgrade, now)
	return out
}

// outHeader copies the request headers for the target: without the
// hop-by-hop headers (net/http/httputil.ReverseProxy's rules), with the
// X-Forwarded-* and X-Amzn-Trace-Id headers ALB adds, and the upgrade
// the client asks for.
func (rt *routes) outHeader(r *http.Request, upgrade string, now time.Time) http.Header {
	in := r.Header
	values := 0
	for _, vv := range in {
		values += len(vv)
	}
	h := make(http.Header, len(in)+4)
	slab := make([]string, values)
	conn := in["Connection"]
	for k, vv := range in {
		if hopByHop(k) || (len(conn) > 0 && listed(conn, k)) || (rt.lb.dropInvalid && !validHeaderName(k)) {
			continue
		}
		n := copy(slab, vv)
		h[k] = slab[:n:n]
		slab = slab[n:]
	}
	if te := in["Te"]; len(te) > 0 && listed(te, "trailers") {
		h["Te"] = hdrTrailers
	}
	if upgrade != "" {
		h["Connection"] = hdrUpgrade
		h["Upgrade"] = []string{upgrade}
	}
	switch rt.lb.xff {
	case XFFPreserve:
	case XFFRemove:
		delete(h, "X-Forwarded-For")
	default:
		client := clientAddr(r.RemoteAddr, rt.lb.xffPort)
		if prior := in["X-Forwarded-For"]; len(prior) > 0 {
			h["X-Forwarded-For"] = []string{strings.Join(prior, ", ") + ", " + client}
		} else {
			h["X-Forwarded-For"] = []string{client}
		}
	}
	if _, ok := h["User-Agent"]; !ok {
		// An empty value keeps net/http from adding its own.
		h["User-Agent"] = hdrEmpty
	}
	h["X-Forwarded-Proto"] = rt.protoHeader
	h["X-Forwarded-Port"] = rt.portHeader
	h["X-Amzn-Trace-Id"] = []string{traceID(in["X-Amzn-Trace-Id"], now)}
	return h
}

// Shared header values; their capacity equals their length, so an append
// copies rather than writes into them.
var (
	hdrTrailers = []string{"trailers"}[:1:1]
	hdrUpgrade  = []string{"Upgrade"}[:1:1]
	hdrEmpty    = []string{""}[:1:1]
	hdrZero     = []string{"0"}[:1:1]
)

func hopByHop(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// listed reports whether the comma-separated lists in values name token,
// ignoring case.
func listed(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			var item string
			item, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(item), token) {
				return true
			}
		}
	}
	return false
}

// validHeaderName reports whether a header name is made of letters,
// digits and hyphens only (ALB's drop_invalid_header_fields).
func validHeaderName(k string) bool {
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return k != ""
}

// clientAddr is the client's address for X-Forwarded-For: the IP, or with
// the port "ip:port" ("[ip]:port" for IPv6).
func clientAddr(remote string, withPort bool) string {
	if withPort {
		return remote
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return host
}

// traceID is the X-Amzn-Trace-Id header to send: a new Root field when the
// request has none, otherwise the request's fields with a new Self field
// first (ALB's request tracing).
func traceID(prior []string, now time.Time) string {
	var buf [40]byte
	return string(appendTraceID(buf[:0], prior, now))
}

// appendTraceID appends the X-Amzn-Trace-Id header value to send to b.
func appendTraceID(b []byte, prior []string, now time.Time) []byte {
	var buf [7 + 8 + 1 + 24]byte
	copy(buf[:], "Root=1-")
	var ts [4]byte
	sec := uint32(now.Unix())
	ts[0], ts[1], ts[2], ts[3] = byte(sec>>24), byte(sec>>16), byte(sec>>8), byte(sec)
	hex.Encode(buf[7:15], ts[:])
	buf[15] = '-'
	var id [12]byte
	x, y := rand.Uint64(), rand.Uint32()
	for i := range 8 {
		id[i] = byte(x >> (8 * i))
	}
	for i := range 4 {
		id[8+i] = byte(y >> (8 * i))
	}
	hex.Encode(buf[16:], id[:])
	if len(prior) == 0 || !strings.Contains(prior[0], "Root=") {
		return append(b, buf[:]...)
	}
	b = append(b, "Self="...)
	b = append(b, buf[5:]...)
	for _, f := range strings.Split(prior[0], ";") {
		if f = strings.TrimSpace(f); f == "" || strings.HasPrefix(f, "Self=") {
			continue
		}
		b = append(b, ';')
		b = append(b, f...)
	}
	return b
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// relay writes the target's response to the client, with the cookies of
// af (nil without stickiness) after the target's. A response that breaks
// off after its headers aborts the client's connection, so the client sees
// the truncation.
func relay(w http.ResponseWriter, resp *http.Response, af *affinity) {
	dst := w.Header()
	conn := resp.Header["Connection"]
	for k, vv := range resp.Header {
		if hopByHop(k) || (len(conn) > 0 && listed(conn, k)) {
			continue
		}
		dst[k] = vv
	}
	if len(resp.Trailer) > 0 {
		keys := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		dst["Trailer"] = []string{strings.Join(keys, ", ")}
	}
	if af != nil {
		af.setCookies(dst)
	}
	w.WriteHeader(resp.StatusCode)
	var readErr error
	if resp.ContentLength != 0 {
		// A client that leaves just ends the copy; a target that breaks off
		// the body aborts the answer.
		if _, rerr := copyTo(w, resp.Body, resp.ContentLength < 0); rerr != io.EOF {
			readErr = rerr
		}
	}
	_ = resp.Body.Close()
	for k, vv := range resp.Trailer {
		dst[http.TrailerPrefix+k] = vv
	}
	if readErr != nil {
		panic(http.ErrAbortHandler)
	}
}
