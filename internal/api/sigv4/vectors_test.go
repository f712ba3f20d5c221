package sigv4

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

// The AWS SigV4 test suite's fixed inputs: the documented example keys, its
// date, region and service.
const (
	suiteKey     = "AKIDEXAMPLE"
	suiteSecret  = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	suiteAmzDate = "20150830T123600Z"
	suiteScope   = "20150830/us-east-1/service/aws4_request"
)

var suiteTime = time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)

func suiteVerifier() *Verifier {
	return &Verifier{
		Lookup: lookupIn(map[string]Credentials{suiteKey: {AccessKeyID: suiteKey, SecretAccessKey: suiteSecret}}),
		Now:    func() time.Time { return suiteTime },
	}
}

// TestSuiteKnownAnswers verifies requests of the AWS SigV4 test suite
// ("aws-sig-v4-test-suite") carrying the signatures AWS publishes for them.
// The requests are the suite's raw HTTP, parsed as the server parses them.
func TestSuiteKnownAnswers(t *testing.T) {
	tests := []struct {
		name          string
		requestLine   string
		headers       string // extra header lines, "\r\n"-terminated
		body          string
		signedHeaders string
		signature     string
	}{
		{"get-vanilla", "GET /", "", "", "host;x-amz-date",
			"5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
		{"get-unreserved", "GET /-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", "", "", "host;x-amz-date",
			"07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
		// The spec normalizes "//example//" to "/example/" (botocore does; the
		// Go SDK does not): the verifier's second path form.
		{"get-slashes", "GET //example//", "", "", "host;x-amz-date",
			"9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84"},
		{"get-vanilla-query-order-key-case", "GET /?Param2=value2&Param1=value1", "", "", "host;x-amz-date",
			"b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
		{"get-vanilla-query-order-value", "GET /?Param1=value2&Param1=value1", "", "", "host;x-amz-date",
			"5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"},
		{"get-vanilla-utf8-query", "GET /?%E1%88%B4=bar", "", "", "host;x-amz-date",
			"2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
		{"get-header-value-order", "GET /",
			"My-Header1: value4\r\nMy-Header1: value1\r\nMy-Header1: value3\r\nMy-Header1: value2\r\n", "",
			"host;my-header1;x-amz-date", "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"},
		{"get-header-key-duplicate", "GET /",
			"My-Header1: value2\r\nMy-Header1: value2\r\nMy-Header1: value1\r\n", "",
			"host;my-header1;x-amz-date", "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
		{"get-header-value-trim", "GET /",
			"My-Header1:  value1 \r\nMy-Header2: \"a   b   c\"\r\n", "",
			"host;my-header1;my-header2;x-amz-date", "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
		{"post-vanilla", "POST /", "", "", "host;x-amz-date",
			"5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
		// The body is on the wire with its Content-Length, which is not signed.
		{"post-x-www-form-urlencoded", "POST /",
			"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 13\r\n", "Param1=value1",
			"content-type;host;x-amz-date", "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.requestLine + " HTTP/1.1\r\n" +
				"Host: example.amazonaws.com\r\n" +
				"X-Amz-Date: " + suiteAmzDate + "\r\n" +
				tt.headers +
				"Authorization: AWS4-HMAC-SHA256 Credential=" + suiteKey + "/" + suiteScope +
				", SignedHeaders=" + tt.signedHeaders + ", Signature=" + tt.signature + "\r\n\r\n" + tt.body
			r, body := readRequest(t, raw)
			res, err := suiteVerifier().Verify(context.Background(), r, body)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if res.AccessKeyID != suiteKey || res.Region != "us-east-1" || res.Service != "service" || !res.SignedAt.Equal(suiteTime) {
				t.Errorf("Result = %+v", res)
			}

			// One changed hex digit must fail.
			bad := strings.Replace(raw, "Signature="+tt.signature, "Signature="+flipLastHex(tt.signature), 1)
			r, body = readRequest(t, bad)
			if _, err := suiteVerifier().Verify(context.Background(), r, body); err == nil {
				t.Fatal("a wrong signature verified")
			}
		})
	}
}

func flipLastHex(s string) string {
	last := s[len(s)-1]
	if last == '0' {
		return s[:len(s)-1] + "1"
	}
	return s[:len(s)-1] + "0"
}

// refSign is a small reference implementation of the SigV4 spec, written
// apart from the verifier, that signs a canonical request given as its parts.
func refSign(secret, amzDate, scope, method, uri, query string, headers [][2]string, signedHeaders, payload string) string {
	var canon strings.Builder
	canon.WriteString(method + "\n" + uri + "\n" + query + "\n")
	for _, h := range headers {
		canon.WriteString(h[0] + ":" + h[1] + "\n")
	}
	canon.WriteString("\n" + signedHeaders + "\n" + payload)
	sum := sha256.Sum256([]byte(canon.String()))
	sts := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])

	mac := func(key []byte, data string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(data))
		return h.Sum(nil)
	}
	parts := strings.Split(scope, "/")
	k := mac([]byte("AWS4"+secret), parts[0])
	k = mac(k, parts[1])
	k = mac(k, parts[2])
	k = mac(k, parts[3])
	return hex.EncodeToString(mac(k, sts))
}

// TestReferenceSignerKnownAnswer pins the reference implementation to the
// suite's get-vanilla answer, so that the tests below that sign with it
// stand on a checked signer.
func TestReferenceSignerKnownAnswer(t *testing.T) {
	got := refSign(suiteSecret, suiteAmzDate, suiteScope, "GET", "/", "",
		[][2]string{{"host", "example.amazonaws.com"}, {"x-amz-date", suiteAmzDate}}, "host;x-amz-date", payloadHash(nil))
	if want := "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"; got != want {
		t.Fatalf("refSign = %s, want %s", got, want)
	}
}

// TestVerifyHandSigned verifies requests signed by the reference
// implementation in ways the Go SDK does not sign.
func TestVerifyHandSigned(t *testing.T) {
	const host = "localhost:4566"
	json := `{"cluster":"default"}`
	tests := []struct {
		name string
		// raw is the request without its Authorization header.
		raw string
		// canonical headers and signed-header list the client signed.
		headers       [][2]string
		signedHeaders string
		uri, query    string
		amzDate       string
		payload       string
	}{
		{
			name: "botocore JSON 1.1 request (no content-length, no user-agent signed)",
			raw: "POST / HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: aws-cli/2.27.0 md/Botocore#1.38.0\r\n" +
				"Content-Type: application/x-amz-json-1.1\r\nX-Amz-Target: " + ecsTarget + "\r\n" +
				"X-Amz-Date: 20260101T120000Z\r\nContent-Length: 21\r\n",
			headers: [][2]string{{"content-type", "application/x-amz-json-1.1"}, {"host", host},
				{"x-amz-date", "20260101T120000Z"}, {"x-amz-target", ecsTarget}},
			signedHeaders: "content-type;host;x-amz-date;x-amz-target",
			uri:           "/", amzDate: "20260101T120000Z", payload: payloadHash([]byte(json)),
		},
		{
			name: "signing time from the Date header when X-Amz-Date is absent",
			raw: "POST / HTTP/1.1\r\nHost: " + host + "\r\nDate: Thu, 01 Jan 2026 12:00:00 GMT\r\n" +
				"Content-Type: application/x-amz-json-1.1\r\nContent-Length: 21\r\n",
			headers: [][2]string{{"content-type", "application/x-amz-json-1.1"}, {"date", "Thu, 01 Jan 2026 12:00:00 GMT"},
				{"host", host}},
			signedHeaders: "content-type;date;host",
			uri:           "/", amzDate: "20260101T120000Z", payload: payloadHash([]byte(json)),
		},
		{
			name: "botocore collapses a tab inside a header value",
			raw: "POST / HTTP/1.1\r\nHost: " + host + "\r\nX-Amz-Date: 20260101T120000Z\r\n" +
				"X-Custom: a\tb  c\r\nContent-Length: 21\r\n",
			headers:       [][2]string{{"host", host}, {"x-amz-date", "20260101T120000Z"}, {"x-custom", "a b c"}},
			signedHeaders: "host;x-amz-date;x-custom",
			uri:           "/", amzDate: "20260101T120000Z", payload: payloadHash([]byte(json)),
		},
		{
			name: "the Go SDK keeps a tab inside a header value",
			raw: "POST / HTTP/1.1\r\nHost: " + host + "\r\nX-Amz-Date: 20260101T120000Z\r\n" +
				"X-Custom: a\tb  c\r\nContent-Length: 21\r\n",
			headers:       [][2]string{{"host", host}, {"x-amz-date", "20260101T120000Z"}, {"x-custom", "a\tb c"}},
			signedHeaders: "host;x-amz-date;x-custom",
			uri:           "/", amzDate: "20260101T120000Z", payload: payloadHash([]byte(json)),
		},
		{
			name:          "botocore removes dot segments before signing",
			raw:           "GET /a/./b/../c//d HTTP/1.1\r\nHost: " + host + "\r\nX-Amz-Date: 20260101T120000Z\r\n",
			headers:       [][2]string{{"host", host}, {"x-amz-date", "20260101T120000Z"}},
			signedHeaders: "host;x-amz-date",
			uri:           "/a/c/d", amzDate: "20260101T120000Z", payload: payloadHash(nil),
		},
		{
			name:          "query encoded with %20, as botocore sends it",
			raw:           "GET /?b=hello%20world&a=%2B HTTP/1.1\r\nHost: " + host + "\r\nX-Amz-Date: 20260101T120000Z\r\n",
			headers:       [][2]string{{"host", host}, {"x-amz-date", "20260101T120000Z"}},
			signedHeaders: "host;x-amz-date",
			uri:           "/", query: "a=%2B&b=hello%20world", amzDate: "20260101T120000Z", payload: payloadHash(nil),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scope := "20260101/" + testRegion + "/" + testService + "/aws4_request"
			sig := refSign(longTermSecret, tt.amzDate, scope, strings.Fields(tt.raw)[0], tt.uri, tt.query,
				tt.headers, tt.signedHeaders, tt.payload)
			body := ""
			if strings.Contains(tt.raw, "Content-Length: 21") {
				body = json
			}
			raw := tt.raw + "Authorization: AWS4-HMAC-SHA256 Credential=" + longTermKey + "/" + scope +
				",SignedHeaders=" + tt.signedHeaders + ",Signature=" + sig + "\r\n\r\n" + body
			r, b := readRequest(t, raw)
			if _, err := newVerifier(t0).Verify(context.Background(), r, b); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}
