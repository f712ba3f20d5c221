package sigv4

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Run briefly in CI with:
//
//	go test -run '^$' -fuzz FuzzParseAuthorization -fuzztime 10s ./internal/api/sigv4
//	go test -run '^$' -fuzz FuzzParsePresigned -fuzztime 10s ./internal/api/sigv4

// FuzzParseAuthorization feeds arbitrary Authorization headers to the parser
// and to Verify. Neither may panic; a refusal is one of the four AWS codes;
// and whatever the parser accepts round-trips through its rendering.
func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, " +
			"Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request,SignedHeaders=host;x-amz-date," +
			"Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
		"AWS4-HMAC-SHA256",
		"AWS4-HMAC-SHA256 ",
		"AWS4-HMAC-SHA256 Credential= AKIDEXAMPLE/20150830/us-east-1/service/aws4_request",
		"AWS4-HMAC-SHA256 Credential=a/b/c/d, SignedHeaders=host, Signature=",
		"AWS4-HMAC-SHA256 Credential=a/b/c/d/e///, SignedHeaders=, Signature=00, Signature=11, Foo=bar",
		"AWS4-HMAC-SHA256\tCredential=a=b=c,,, ,Signature=zz\t,SignedHeaders=HOST;;",
		"AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=",
		"Bearer eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.e30.x",
		"AWS5-HMAC-SHA256 FooBar, BazBurp",
		"",
		"\x00\xff AWS4-HMAC-SHA256 Credential=ü/ü/ü/ü/ü",
	} {
		f.Add(s)
	}
	v := suiteVerifier()
	f.Fuzz(func(t *testing.T, h string) {
		a, err := parseAuthorization(h)
		if err != nil {
			if err.Code != CodeIncompleteSignature || err.HTTPStatus != http.StatusBadRequest || !strings.Contains(err.Message, h) {
				t.Fatalf("parse error %+v", err)
			}
		} else {
			checkParsedAuthorization(t, a)
		}

		r := &http.Request{
			Method: http.MethodGet,
			URL:    &url.URL{Path: "/"},
			Host:   "example.amazonaws.com",
			Header: http.Header{"X-Amz-Date": {suiteAmzDate}, "Authorization": {h}},
		}
		res, verr := v.Verify(context.Background(), r, nil)
		if verr == nil {
			if res.AccessKeyID != suiteKey {
				t.Fatalf("verified as %+v", res)
			}
			return
		}
		checkRefusal(t, verr)
	})
}

func checkParsedAuthorization(t *testing.T, a authorization) {
	t.Helper()
	if strings.ContainsAny(a.Algorithm, " \t") {
		t.Fatalf("algorithm %q holds a blank", a.Algorithm)
	}
	for _, p := range []string{a.Credential, a.SignedHeaders, a.Signature} {
		if strings.ContainsAny(p, ", \t") {
			t.Fatalf("parameter %q holds a separator", p)
		}
	}
	if a.Algorithm != "" && a.Credential != "" && a.SignedHeaders != "" && a.Signature != "" {
		b, err := parseAuthorization(a.String())
		if err != nil || b != a {
			t.Fatalf("round trip of %+v gave %+v, %v", a, b, err)
		}
	}
	if a.Credential == "" {
		return
	}
	c, err := parseCredential(a.Credential)
	if err != nil {
		if err.Code != CodeIncompleteSignature {
			t.Fatalf("credential error %+v", err)
		}
		return
	}
	for _, p := range []string{c.AccessKeyID, c.Date, c.Region, c.Service, c.Terminator} {
		if strings.Contains(p, "/") {
			t.Fatalf("credential element %q holds a slash", p)
		}
	}
	if got, want := c.String(), strings.TrimRight(a.Credential, "/"); got != want {
		t.Fatalf("credential %q renders as %q", want, got)
	}
}

// checkRefusal checks that err is an *Error with one of the four codes and
// the status that goes with it.
func checkRefusal(t *testing.T, err error) {
	t.Helper()
	e := asError(t, err)
	want := map[string]int{
		CodeMissingAuthenticationToken: http.StatusForbidden,
		CodeIncompleteSignature:        http.StatusBadRequest,
		CodeInvalidSignature:           http.StatusBadRequest,
		CodeUnrecognizedClient:         http.StatusBadRequest,
	}
	if status, ok := want[e.Code]; !ok || status != e.HTTPStatus || e.Message == "" {
		t.Fatalf("refusal %+v", e)
	}
}

// FuzzParsePresigned does the same for a presigned URL's query string.
func FuzzParsePresigned(f *testing.F) {
	good := url.Values{
		"X-Amz-Algorithm":     {"AWS4-HMAC-SHA256"},
		"X-Amz-Credential":    {"AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"},
		"X-Amz-Date":          {suiteAmzDate},
		"X-Amz-Expires":       {"300"},
		"X-Amz-SignedHeaders": {"host"},
		"X-Amz-Signature":     {"5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
	}
	f.Add(good.Encode())
	f.Add(good.Encode() + "&X-Amz-Expires=604801&X-Amz-Security-Token=abc")
	f.Add(strings.Replace(good.Encode(), "300", "-1", 1))
	f.Add(strings.Replace(good.Encode(), "300", "9999999999999999999999", 1))
	f.Add(strings.Replace(good.Encode(), "20150830T123600Z", "2015-08-30", 1))
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a%2Fb")
	f.Add("X-Amz-Algorithm=&&&=;%zz&X-Amz-Date=20150830T123600Z")
	f.Add("")
	v := suiteVerifier()
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw)
		p, err := parsePresigned(q)
		if err != nil {
			if err.Code != CodeIncompleteSignature || err.HTTPStatus != http.StatusBadRequest {
				t.Fatalf("parse error %+v", err)
			}
		} else {
			checkParsedPresigned(t, q, p)
		}

		r := &http.Request{
			Method: http.MethodGet,
			URL:    &url.URL{Path: "/", RawQuery: raw},
			Host:   "example.amazonaws.com",
			Header: http.Header{},
		}
		if _, verr := v.Verify(context.Background(), r, nil); verr != nil {
			checkRefusal(t, verr)
		}
	})
}

func checkParsedPresigned(t *testing.T, q url.Values, p presigned) {
	t.Helper()
	if q.Get(qAlgorithm) != algorithm {
		t.Fatalf("accepted algorithm %q", q.Get(qAlgorithm))
	}
	if got := p.SignedAt.Format(amzDateLayout); got != p.AmzDate {
		t.Fatalf("date %q parsed as %s", p.AmzDate, got)
	}
	if p.Expires < 0 || p.Expires > maxPresignExpiry || p.Expires%time.Second != 0 || !p.HasExpires && p.Expires != 0 {
		t.Fatalf("expires %v (given: %v)", p.Expires, p.HasExpires)
	}
	c := p.Credential
	for _, s := range []string{c.AccessKeyID, c.Date, c.Region, c.Service, c.Terminator} {
		if strings.Contains(s, "/") {
			t.Fatalf("credential element %q holds a slash", s)
		}
	}
	back := url.Values{
		qAlgorithm:     {algorithm},
		qCredential:    {c.String()},
		qSignature:     {p.Signature},
		qSignedHeaders: {p.SignedHeaders},
		qDate:          {p.AmzDate},
	}
	if p.HasExpires {
		back.Set(qExpires, strconv.FormatInt(int64(p.Expires/time.Second), 10))
	}
	q2, err := url.ParseQuery(back.Encode())
	if err != nil {
		t.Fatal(err)
	}
	p2, perr := parsePresigned(q2)
	if perr != nil || p2 != p {
		t.Fatalf("round trip of %+v gave %+v, %v", p, p2, perr)
	}
}
