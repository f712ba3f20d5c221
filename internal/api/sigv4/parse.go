package sigv4

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	algorithm     = "AWS4-HMAC-SHA256"
	terminator    = "aws4_request"
	amzDateLayout = "20060102T150405Z"
	// maxPresignExpiry is the longest X-Amz-Expires AWS accepts: a derived
	// signing key is good for seven days.
	maxPresignExpiry = 7 * 24 * time.Hour
)

// Query parameters of the presigned form.
const (
	qAlgorithm     = "X-Amz-Algorithm"
	qCredential    = "X-Amz-Credential"
	qSignature     = "X-Amz-Signature"
	qSignedHeaders = "X-Amz-SignedHeaders"
	qDate          = "X-Amz-Date"
	qExpires       = "X-Amz-Expires"
	qSecurityToken = "X-Amz-Security-Token"
	qContentSHA256 = "X-Amz-Content-Sha256"
)

// Header names, in the canonical form net/http stores them under.
const (
	hAuthorization = "Authorization"
	hAmzDate       = "X-Amz-Date"
	hDate          = "Date"
	hSecurityToken = "X-Amz-Security-Token"
	hContentSHA256 = "X-Amz-Content-Sha256"
)

// authorization is the Authorization header split into its parameters. A
// parameter that is absent or empty is "". It is checked for syntax only.
type authorization struct {
	Algorithm     string
	Credential    string
	SignedHeaders string
	Signature     string
}

// String renders a in the form the SDKs send.
func (a authorization) String() string {
	return a.Algorithm + " Credential=" + a.Credential + ", SignedHeaders=" + a.SignedHeaders + ", Signature=" + a.Signature
}

// parseAuthorization splits an Authorization header value:
//
//	AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/ecs/aws4_request, SignedHeaders=host;x-amz-date, Signature=…
//
// The algorithm runs to the first blank; the parameters after it are
// separated by commas and/or blanks. Unknown parameters are ignored, and of
// a repeated one the first non-empty value wins. For the SigV4 algorithm a part without "=" is
// an error, worded as AWS words it; under any other algorithm it is skipped,
// so that the caller reports the missing parameters (as AWS does for a
// SigV2 header).
func parseAuthorization(h string) (authorization, *Error) {
	var a authorization
	s := strings.Trim(h, " \t")
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		a.Algorithm = s
		return a, nil
	}
	a.Algorithm, s = s[:i], s[i+1:]
	for s != "" {
		var part string
		if j := strings.IndexAny(s, ", \t"); j >= 0 {
			part, s = s[:j], s[j+1:]
		} else {
			part, s = s, ""
		}
		if part == "" {
			continue
		}
		key, value, ok := strings.Cut(part, "=")
		if !ok {
			if a.Algorithm == algorithm {
				return authorization{}, errIncomplete(
					"'%s' not a valid key=value pair (missing equal-sign) in Authorization header: '%s'", part, h)
			}
			continue
		}
		switch key {
		case "Credential":
			setOnce(&a.Credential, value)
		case "SignedHeaders":
			setOnce(&a.SignedHeaders, value)
		case "Signature":
			setOnce(&a.Signature, value)
		}
	}
	return a, nil
}

func setOnce(dst *string, v string) {
	if *dst == "" {
		*dst = v
	}
}

// missingHeaderParts lists, in AWS's words and order, what a header-form
// request lacks; "" means nothing is missing.
func missingHeaderParts(a authorization, haveDate bool, h string) string {
	var b strings.Builder
	for _, p := range [...]struct{ name, value string }{
		{"Credential", a.Credential}, {"Signature", a.Signature}, {"SignedHeaders", a.SignedHeaders},
	} {
		if p.value == "" {
			b.WriteString("Authorization header requires '" + p.name + "' parameter. ")
		}
	}
	if !haveDate {
		b.WriteString("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ")
	}
	if b.Len() == 0 {
		return ""
	}
	return b.String() + "Authorization=" + h
}

// credential is the parsed Credential parameter: the access key and the
// credential scope.
type credential struct {
	AccessKeyID, Date, Region, Service, Terminator string
}

// String renders c as the SDKs send it.
func (c credential) String() string {
	return c.AccessKeyID + "/" + c.Date + "/" + c.Region + "/" + c.Service + "/" + c.Terminator
}

// parseCredential splits keyid/date/region/service/terminator. Trailing
// slashes are ignored, as AWS ignores them.
func parseCredential(s string) (credential, *Error) {
	var f [5]string
	rest := strings.TrimRight(s, "/")
	for i := range f {
		if i == len(f)-1 {
			f[i] = rest
			break
		}
		var ok bool
		if f[i], rest, ok = strings.Cut(rest, "/"); !ok {
			return credential{}, errCredentialParts(s)
		}
	}
	if strings.Contains(f[4], "/") {
		return credential{}, errCredentialParts(s)
	}
	return credential{AccessKeyID: f[0], Date: f[1], Region: f[2], Service: f[3], Terminator: f[4]}, nil
}

func errCredentialParts(s string) *Error {
	return errIncomplete(
		"Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '%s'", s)
}

// checkScope refuses a credential scope that does not end in aws4_request or
// whose date is not the request's. The region and service are the caller's
// to judge (see Result).
func checkScope(c credential, amzDate string) *Error {
	var msgs []string
	if c.Terminator != terminator {
		msgs = append(msgs, "Credential should be scoped with a valid terminator: '"+terminator+"', not '"+c.Terminator+"'.")
	}
	if c.Date != amzDate[:8] {
		msgs = append(msgs, "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '"+
			c.Date+"' != '"+amzDate[:8]+"', from '"+amzDate+"'.")
	}
	if len(msgs) == 0 {
		return nil
	}
	return errInvalid(strings.Join(msgs, " "))
}

// parseAmzDate parses an ISO 8601 basic-format timestamp (20150830T123600Z).
func parseAmzDate(v string) (time.Time, *Error) {
	t, err := time.Parse(amzDateLayout, v)
	if err != nil || len(v) != len(amzDateLayout) {
		return time.Time{}, errBadDate(v)
	}
	return t, nil
}

func errBadDate(v string) *Error {
	return errIncomplete("Date must be in ISO-8601 'basic format'. Got '%s'. See http://en.wikipedia.org/wiki/ISO_8601", v)
}

// requestDate returns the signing time of a header-form request and the
// ISO 8601 basic form that goes into the string to sign: X-Amz-Date, or
// failing that the HTTP Date header. ok is false when the request has
// neither.
func requestDate(h http.Header) (t time.Time, amzDate string, ok bool, err *Error) {
	if v := firstValue(h, hAmzDate); v != "" {
		t, err = parseAmzDate(v)
		return t, v, true, err
	}
	v := firstValue(h, hDate)
	if v == "" {
		return time.Time{}, "", false, nil
	}
	t, perr := http.ParseTime(v)
	if perr != nil {
		return time.Time{}, "", true, errBadDate(v)
	}
	t = t.UTC()
	return t, t.Format(amzDateLayout), true, nil
}

func firstValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// presigned is the SigV4 part of a presigned URL's query string, checked for
// syntax.
type presigned struct {
	Credential    credential
	SignedHeaders string
	Signature     string
	AmzDate       string
	SignedAt      time.Time
	// Expires is X-Amz-Expires; HasExpires is false when the URL does not
	// give one, and then the clock-skew window applies as for the header form.
	Expires    time.Duration
	HasExpires bool
}

// parsePresigned reads the X-Amz-* parameters of a presigned URL. The first
// value of a repeated parameter counts.
func parsePresigned(q url.Values) (presigned, *Error) {
	var missing strings.Builder
	for _, k := range [...]string{qAlgorithm, qCredential, qSignature, qSignedHeaders, qDate} {
		if q.Get(k) == "" {
			missing.WriteString("AWS query-string parameters must include '" + k + "'. ")
		}
	}
	if missing.Len() > 0 {
		return presigned{}, errIncomplete("%sRe-examine the query-string parameters.", missing.String())
	}
	if alg := q.Get(qAlgorithm); alg != algorithm {
		return presigned{}, errIncomplete("Unsupported AWS 'algorithm': '%s'.", alg)
	}
	p := presigned{SignedHeaders: q.Get(qSignedHeaders), Signature: q.Get(qSignature), AmzDate: q.Get(qDate)}
	var err *Error
	if p.SignedAt, err = parseAmzDate(p.AmzDate); err != nil {
		return presigned{}, err
	}
	if vs := q[qExpires]; len(vs) > 0 {
		if p.Expires, err = parseExpires(vs[0]); err != nil {
			return presigned{}, err
		}
		p.HasExpires = true
	}
	if p.Credential, err = parseCredential(q.Get(qCredential)); err != nil {
		return presigned{}, err
	}
	return p, nil
}

// parseExpires reads X-Amz-Expires, a number of seconds from 0 to 604800,
// with the messages S3 uses for the presigned form.
func parseExpires(v string) (time.Duration, *Error) {
	digits, negative := strings.CutPrefix(v, "-")
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, errIncomplete("X-Amz-Expires should be a number")
	}
	if negative {
		return 0, errIncomplete("X-Amz-Expires must be non-negative")
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n > int64(maxPresignExpiry/time.Second) {
		return 0, errIncomplete("X-Amz-Expires must be less than a week (in seconds) that is 604800")
	}
	return time.Duration(n) * time.Second, nil
}
