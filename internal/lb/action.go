package lb

import (
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

type actionKind uint8

const (
	actForward actionKind = iota
	actRedirect
	actFixed
)

// action is a compiled Action.
type action struct {
	kind   actionKind
	groups []weighted
	total  int
	// stick is the group stickiness of a forward to several groups (0
	// off).
	stick    time.Duration
	redirect *redirect
	fixed    *FixedResponse
}

// weighted is a target group of a forward action with its weight and the
// metrics of its requests through this listener.
type weighted struct {
	g      *group
	weight int
	m      *pairMetrics
}

// pickGroup chooses the target group of a forward: with several, at
// random in proportion to their weights. It returns nil when every weight
// is 0.
func (a *action) pickGroup() *weighted {
	if len(a.groups) == 1 {
		return &a.groups[0]
	}
	if a.total <= 0 {
		return nil
	}
	n := rand.IntN(a.total)
	for i := range a.groups {
		n -= a.groups[i].weight
		if n < 0 {
			return &a.groups[i]
		}
	}
	return nil
}

// redirect is a compiled Redirect: each URI component is a template.
type redirect struct {
	protocol, host, port, path, query template
	status                            int
}

// template is a string with #{...} placeholders, split into parts.
type template []tplPart

type tplPart struct {
	lit string
	ph  placeholder
}

type placeholder uint8

const (
	phNone placeholder = iota
	phProtocol
	phHost
	phPort
	phPath
	phQuery
)

var placeholders = map[string]placeholder{
	"#{protocol}": phProtocol,
	"#{host}":     phHost,
	"#{port}":     phPort,
	"#{path}":     phPath,
	"#{query}":    phQuery,
}

func compileTemplate(s string) (template, error) {
	var t template
	for s != "" {
		i := strings.Index(s, "#{")
		if i < 0 {
			t = append(t, tplPart{lit: s})
			break
		}
		if i > 0 {
			t = append(t, tplPart{lit: s[:i]})
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return nil, invalid("redirect: unterminated placeholder in %q", s)
		}
		ph, ok := placeholders[s[i:i+j+1]]
		if !ok {
			return nil, invalid("redirect: unknown placeholder %s", s[i:i+j+1])
		}
		t = append(t, tplPart{ph: ph})
		s = s[i+j+1:]
	}
	return t, nil
}

func compileRedirect(r *Redirect) (*redirect, error) {
	if r == nil {
		return nil, invalid("redirect action without a redirect")
	}
	def := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	proto := def(r.Protocol, "#{protocol}")
	switch strings.ToUpper(proto) {
	case "HTTP", "HTTPS", "#{PROTOCOL}":
	default:
		return nil, invalid("redirect: protocol %q is not HTTP, HTTPS or #{protocol}", r.Protocol)
	}
	port := def(r.Port, "#{port}")
	if port != "#{port}" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, invalid("redirect: port %q is not 1-65535 or #{port}", r.Port)
		}
	}
	path := def(r.Path, "/#{path}")
	if !strings.HasPrefix(path, "/") {
		return nil, invalid("redirect: path %q does not start with /", r.Path)
	}
	out := &redirect{status: r.StatusCode}
	switch out.status {
	case 0:
		out.status = http.StatusFound
	case http.StatusMovedPermanently, http.StatusFound:
	default:
		return nil, invalid("redirect: status %d is not 301 or 302", r.StatusCode)
	}
	var err error
	for _, c := range []struct {
		dst *template
		src string
	}{
		{&out.protocol, strings.ToLower(proto)},
		{&out.host, def(r.Host, "#{host}")},
		{&out.port, port},
		{&out.path, path},
		{&out.query, def(r.Query, "#{query}")},
	} {
		if *c.dst, err = compileTemplate(c.src); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (t template) expand(b *strings.Builder, rt *routes, r *http.Request) {
	for _, p := range t {
		switch p.ph {
		case phNone:
			b.WriteString(p.lit)
		case phProtocol:
			b.WriteString(rt.scheme)
		case phHost:
			b.WriteString(stripPort(r.Host))
		case phPort:
			b.WriteString(rt.port)
		case phPath:
			b.WriteString(strings.TrimPrefix(r.URL.EscapedPath(), "/"))
		case phQuery:
			b.WriteString(r.URL.RawQuery)
		}
	}
}

// location builds the redirect's target URL for r. Like ALB's, it always
// names the port.
func (rd *redirect) location(rt *routes, r *http.Request) string {
	var b strings.Builder
	rd.protocol.expand(&b, rt, r)
	scheme := strings.ToLower(b.String())
	b.Reset()
	b.WriteString(scheme)
	b.WriteString("://")
	rd.host.expand(&b, rt, r)
	b.WriteByte(':')
	rd.port.expand(&b, rt, r)
	rd.path.expand(&b, rt, r)
	mark := b.Len()
	b.WriteByte('?')
	rd.query.expand(&b, rt, r)
	s := b.String()
	if len(s) == mark+1 {
		s = s[:mark]
	}
	return s
}

func compileFixed(f *FixedResponse) (*FixedResponse, error) {
	if f == nil {
		return nil, invalid("fixed-response action without a response")
	}
	if f.StatusCode < 200 || f.StatusCode > 599 {
		return nil, invalid("fixed-response: status %d is not 2XX, 4XX or 5XX", f.StatusCode)
	}
	out := *f
	if out.ContentType == "" {
		out.ContentType = "text/plain"
	}
	return &out, nil
}

func writeFixed(w http.ResponseWriter, f *FixedResponse) {
	h := w.Header()
	h["Content-Type"] = []string{f.ContentType}
	h["Content-Length"] = []string{strconv.Itoa(len(f.Body))}
	w.WriteHeader(f.StatusCode)
	if f.Body != "" {
		_, _ = io.WriteString(w, f.Body)
	}
}

// errorPages are the bodies of the answers the load balancer gives itself,
// in ALB's format.
var errorPages = func() map[int]string {
	m := map[int]string{}
	for _, code := range []int{400, 405, 413, 414, 431, 500, 502, 503, 504} {
		text := strconv.Itoa(code) + " " + http.StatusText(code)
		m[code] = "<html>\r\n<head><title>" + text + "</title></head>\r\n<body>\r\n<center><h1>" + text +
			"</h1></center>\r\n</body>\r\n</html>\r\n"
	}
	return m
}()

// writeError answers with one of the load balancer's own errors. A 400
// closes the connection, as ALB does.
func writeError(w http.ResponseWriter, code int) {
	body := errorPages[code]
	h := w.Header()
	h["Content-Type"] = []string{"text/html"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	if code == http.StatusBadRequest {
		h["Connection"] = []string{"close"}
	}
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}
