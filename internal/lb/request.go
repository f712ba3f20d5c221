package lb

import (
	"bufio"
	"bytes"
	"net/http"
	"net/url"
	"strings"
)

// The common request, an HTTP/1.1 request without a body whose head
// arrived in one piece, is read by readSimple into structures its
// connection reuses: one string for the whole head, every field a slice of
// it, instead of http.ReadRequest's dozen allocations. Whatever readSimple
// is not sure to read exactly as http.ReadRequest would (a body, obsolete
// line folding, bare line feeds, an escaped path, Pragma, a second Host
// ...) it leaves to http.ReadRequest, so the two never disagree.

// simpleRequest is the reusable request of a connection.
type simpleRequest struct {
	req    http.Request
	url    url.URL
	header http.Header
	// values backs the header's value slices.
	values []string
}

// readSimple reads the request at the front of br, already buffered, or
// returns nil and leaves br as it was. The request is valid until the next
// call.
func (s *simpleRequest) readSimple(br *bufio.Reader) *http.Request {
	buf, _ := br.Peek(br.Buffered())
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		return nil
	}
	head := string(buf[:end+2]) // every line with its CRLF
	line, rest, _ := strings.Cut(head, "\r\n")
	method, line, ok1 := strings.Cut(line, " ")
	uri, proto, ok2 := strings.Cut(line, " ")
	if !ok1 || !ok2 || proto != "HTTP/1.1" || !simpleMethod(method) || !simpleURI(uri) {
		return nil
	}
	if s.header == nil {
		s.header = make(http.Header, 16)
		s.values = make([]string, 32)
	}
	h := s.header
	clear(h)
	values := s.values
	host := ""
	hosts := 0
	for rest != "" {
		line, rest, _ = strings.Cut(rest, "\r\n")
		name, value, ok := strings.Cut(line, ":")
		if !ok || !tokenString(name) || !simpleValue(value) {
			return nil
		}
		value = strings.Trim(value, " \t")
		key := http.CanonicalHeaderKey(name) // no allocation when canonical
		switch key {
		case "Host":
			host, hosts = value, hosts+1
			continue
		case "Content-Length", "Transfer-Encoding", "Pragma", "Trailer":
			return nil
		}
		if vv, ok := h[key]; ok || len(values) == 0 {
			h[key] = append(vv, value)
			continue
		}
		values[0] = value
		h[key] = values[:1:1]
		values = values[1:]
	}
	if hosts > 1 {
		return nil
	}
	s.url = url.URL{}
	u := &s.url
	if strings.HasSuffix(uri, "?") && strings.Count(uri, "?") == 1 {
		u.Path, u.ForceQuery = uri[:len(uri)-1], true
	} else {
		u.Path, u.RawQuery, _ = strings.Cut(uri, "?")
	}
	if !simplePath(u.Path) {
		return nil
	}
	r := &s.req
	*r = http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Body:       http.NoBody,
		Host:       host,
		RequestURI: uri,
	}
	r.Close = listed(h["Connection"], "close")
	_, _ = br.Discard(end + 4)
	return r
}

// simpleMethod reports whether m is an upper-case method name (a token).
func simpleMethod(m string) bool {
	for i := 0; i < len(m); i++ {
		if c := m[i]; c < 'A' || c > 'Z' {
			return false
		}
	}
	return m != ""
}

// simpleURI reports whether a request target is an origin-form path of
// visible ASCII characters.
func simpleURI(u string) bool {
	if u == "" || u[0] != '/' {
		return false
	}
	for i := 0; i < len(u); i++ {
		if c := u[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// simplePath reports whether url.ParseRequestURI leaves the path p as it
// is: no escapes, nothing it would escape.
func simplePath(p string) bool {
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~/$&+,:;=@", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// tokenString reports whether s is a non-empty header name made of token
// characters (RFC 9110, section 5.6.2).
func tokenString(s string) bool {
	for i := 0; i < len(s); i++ {
		if !tokenChar[s[i]] {
			return false
		}
	}
	return s != ""
}

var tokenChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// simpleValue reports whether a header value has no control character but
// tabs (bytes over 0x7f are left to http.ReadRequest too).
func simpleValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c >= 0x7f {
			return false
		}
	}
	return true
}
