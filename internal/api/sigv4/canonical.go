package sigv4

import (
	"cmp"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// This file builds the canonical request of the SigV4 spec from a request as
// the server received it, reproducing what the two clients Berth is measured
// against do on their side:
//
//   - AWS SDK for Go v2 (aws/signer/v4): canonical URI = httpbinding.EscapePath(
//     URL.EscapedPath(), false); query = url.Values re-encoded and sorted after
//     encoding; header values trimmed with runs of spaces collapsed.
//   - botocore (AWS CLI v2): canonical URI = quote(remove_dot_segments(path),
//     safe='/~'); query sorted by encoded key then value; header values
//     ' '.join(value.split()), which collapses any whitespace.
//
// Where the two differ (dot segments and "//" in the path, tabs inside a header
// value) the verifier tries both forms; see variants in sigv4.go.

// wsMode says how a canonical header value is cleaned up.
type wsMode uint8

const (
	// wsSpaces trims whitespace at both ends and collapses runs of spaces
	// into one, as the Go SDK does.
	wsSpaces wsMode = iota
	// wsAll also turns every run of whitespace (tabs included) into one
	// space, as botocore does.
	wsAll
)

// appendCanonicalURI appends the canonical URI of an escaped request path
// under the non-S3 rule: every byte outside the RFC 3986 unreserved set,
// other than '/', is percent-encoded. The path is already escaped on the wire,
// so this escapes it a second time ("/a%20b" signs as "/a%2520b"), exactly as
// both SDKs do.
func appendCanonicalURI(dst []byte, escapedPath string) []byte {
	if escapedPath == "" {
		return append(dst, '/')
	}
	const hexUpper = "0123456789ABCDEF"
	for i := 0; i < len(escapedPath); i++ {
		c := escapedPath[i]
		if c == '/' || isUnreserved(c) {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', hexUpper[c>>4], hexUpper[c&15])
	}
	return dst
}

func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// normalizePath removes "." and ".." segments and empty segments ("//") the
// way botocore's remove_dot_segments does before it signs. It returns p
// unchanged when there is nothing to remove.
func normalizePath(p string) string {
	if p == "" {
		return "/"
	}
	if !strings.Contains(p, "//") && !strings.Contains(p, "/.") && !strings.HasPrefix(p, ".") {
		return p
	}
	var out []string
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
	}
	var b strings.Builder
	if strings.HasPrefix(p, "/") {
		b.WriteByte('/')
	}
	b.WriteString(strings.Join(out, "/"))
	if strings.HasSuffix(p, "/") && len(out) > 0 {
		b.WriteByte('/')
	}
	return b.String()
}

// canonicalQuery encodes every name and value of q (RFC 3986, "%20" for a
// space, upper-case hex) and sorts the pairs by encoded name, then encoded
// value. X-Amz-Signature is left out of a presigned URL's query.
func canonicalQuery(q url.Values, presigned bool) string {
	type pair struct{ k, v string }
	var pairs []pair
	for k, vs := range q {
		if presigned && k == qSignature {
			continue
		}
		ek := encodeQueryComponent(k)
		for _, v := range vs {
			pairs = append(pairs, pair{ek, encodeQueryComponent(v)})
		}
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		if c := cmp.Compare(a.k, b.k); c != 0 {
			return c
		}
		return cmp.Compare(a.v, b.v)
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String()
}

// encodeQueryComponent percent-encodes all but the unreserved characters;
// url.QueryEscape does that except that it writes a space as "+", and since it
// escapes a literal '+' as "%2B", every '+' left in its output is a space.
func encodeQueryComponent(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// appendCanonicalHeaders appends one "name:value\n" line for each name in
// signedHeaders, in the order the client listed them and spelled as it spelled
// them: the client computed its signature over exactly that list. A header
// sent several times has its values joined by ",". The Host header comes from
// r.Host, and a signed Content-Length that net/http kept out of r.Header from
// r.ContentLength (or the body's length). It reports whether some value holds
// whitespace other than spaces, where the two wsModes give different results.
func appendCanonicalHeaders(dst []byte, r *http.Request, bodyLen int, signedHeaders string, mode wsMode) ([]byte, bool) {
	other := false
	for rest := signedHeaders; rest != ""; {
		var name string
		name, rest, _ = strings.Cut(rest, ";")
		dst = append(dst, name...)
		dst = append(dst, ':')
		var o bool
		switch lower := strings.ToLower(name); {
		case lower == "host":
			host := r.Host
			if host == "" {
				host = r.URL.Host
			}
			dst, o = appendHeaderValue(dst, host, mode)
		default:
			vals := headerValues(r.Header, name, lower)
			if len(vals) == 0 && lower == "content-length" {
				n := r.ContentLength
				if n < 0 || n == 0 && bodyLen > 0 {
					n = int64(bodyLen)
				}
				dst = strconv.AppendInt(dst, n, 10)
			}
			for i, v := range vals {
				if i > 0 {
					dst = append(dst, ',')
				}
				var vo bool
				dst, vo = appendHeaderValue(dst, v, mode)
				o = o || vo
			}
		}
		other = other || o
		dst = append(dst, '\n')
	}
	return dst, other
}

// headerValues looks a signed header name up in h. The names SDKs sign on
// every call are mapped to their canonical keys without allocating.
func headerValues(h http.Header, name, lower string) []string {
	key := ""
	switch lower {
	case "content-type":
		key = "Content-Type"
	case "content-length":
		key = "Content-Length"
	case "x-amz-date":
		key = "X-Amz-Date"
	case "x-amz-target":
		key = "X-Amz-Target"
	case "x-amz-security-token":
		key = "X-Amz-Security-Token"
	case "x-amz-content-sha256":
		key = "X-Amz-Content-Sha256"
	case "x-amz-user-agent":
		key = "X-Amz-User-Agent"
	case "amz-sdk-invocation-id":
		key = "Amz-Sdk-Invocation-Id"
	case "amz-sdk-request":
		key = "Amz-Sdk-Request"
	case "accept-encoding":
		key = "Accept-Encoding"
	case "content-encoding":
		key = "Content-Encoding"
	default:
		key = textproto.CanonicalMIMEHeaderKey(name)
	}
	return h[key]
}

// appendHeaderValue appends v with whitespace trimmed from both ends and runs
// of blanks inside collapsed to one space (see wsMode). It reports whether v
// holds whitespace other than spaces between its first and last characters.
func appendHeaderValue(dst []byte, v string, mode wsMode) ([]byte, bool) {
	start, end := 0, len(v)
	for start < end && isSpace(v[start]) {
		start++
	}
	for end > start && isSpace(v[end-1]) {
		end--
	}
	other, inRun := false, false
	for i := start; i < end; i++ {
		c := v[i]
		blank := c == ' '
		if c != ' ' && isSpace(c) {
			other = true
			blank = mode == wsAll
		}
		if blank {
			if !inRun {
				dst = append(dst, ' ')
			}
			inRun = true
			continue
		}
		inRun = false
		dst = append(dst, c)
	}
	return dst, other
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// signsHost reports whether the SignedHeaders list names the Host header.
func signsHost(signedHeaders string) bool {
	for rest := signedHeaders; rest != ""; {
		var name string
		name, rest, _ = strings.Cut(rest, ";")
		if strings.EqualFold(name, "host") {
			return true
		}
	}
	return false
}
