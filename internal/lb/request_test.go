package lb

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// TestReadSimpleAgreesWithReadRequest checks that every request readSimple
// takes reads as http.ReadRequest reads it, and that it leaves the others
// untouched.
func TestReadSimpleAgreesWithReadRequest(t *testing.T) {
	tests := []struct {
		name, in string
		simple   bool
	}{
		{"get", "GET /a/b?x=1&y=%20z HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n", true},
		{"lower-case names", "GET / HTTP/1.1\r\nhost: h\r\nx-custom-thing: v\r\naccept: a\r\n\r\n", true},
		{"repeated header", "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nX-A: 2\r\nx-a: 3\r\n\r\n", true},
		{"spaces around values", "GET / HTTP/1.1\r\nHost:  h \r\nX-A:\t v \t\r\nX-B:\r\n\r\n", true},
		{"force query", "GET /p? HTTP/1.1\r\nHost: h\r\n\r\n", true},
		{"two question marks", "GET /p?a?b HTTP/1.1\r\nHost: h\r\n\r\n", true},
		{"double slash", "GET //x/y HTTP/1.1\r\nHost: h\r\n\r\n", true},
		{"connection close", "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Close\r\n\r\n", true},
		{"upgrade", "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", true},
		{"no host", "GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", true},
		{"empty host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", true},
		{"many headers", "GET / HTTP/1.1\r\nHost: h\r\n" + strings.Repeat("X-Many: v\r\nY-Other: w\r\n", 40) + "\r\n", true},
		{"next request buffered", "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n", true},
		{"escaped path", "GET /a%20b HTTP/1.1\r\nHost: h\r\n\r\n", false},
		{"path escapes", "GET /a!b HTTP/1.1\r\nHost: h\r\n\r\n", false},
		{"absolute form", "GET http://x/y HTTP/1.1\r\nHost: h\r\n\r\n", false},
		{"http/1.0", "GET / HTTP/1.0\r\nHost: h\r\n\r\n", false},
		{"body", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nab", false},
		{"chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false},
		{"pragma", "GET / HTTP/1.1\r\nHost: h\r\nPragma: no-cache\r\n\r\n", false},
		{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", false},
		{"folded", "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n 2\r\n\r\n", false},
		{"bare lf", "GET / HTTP/1.1\r\nHost: h\nX-A: 1\r\n\r\n", false},
		{"space before colon", "GET / HTTP/1.1\r\nHost: h\r\nX-A : 1\r\n\r\n", false},
		{"no colon", "GET / HTTP/1.1\r\nHost: h\r\nno colon\r\n\r\n", false},
		{"control in value", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01b\r\n\r\n", false},
		{"lower-case method", "get / HTTP/1.1\r\nHost: h\r\n\r\n", false},
		{"incomplete", "GET / HTTP/1.1\r\nHost: h\r\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s simpleRequest
			br := bufio.NewReaderSize(strings.NewReader(tt.in), 4<<10)
			_, _ = br.Peek(1)
			got := s.readSimple(br)
			if (got != nil) != tt.simple {
				t.Fatalf("readSimple took it: %v, want %v", got != nil, tt.simple)
			}
			if got == nil {
				if br.Buffered() != len(tt.in) {
					t.Fatalf("readSimple consumed %d bytes of a request it left", len(tt.in)-br.Buffered())
				}
				return
			}
			want, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tt.in)))
			if err != nil {
				t.Fatalf("http.ReadRequest: %v", err)
			}
			if got.Method != want.Method || got.RequestURI != want.RequestURI || got.Proto != want.Proto ||
				got.ProtoMajor != want.ProtoMajor || got.ProtoMinor != want.ProtoMinor || got.Host != want.Host ||
				got.Close != want.Close || got.ContentLength != want.ContentLength || got.Body != want.Body ||
				!reflect.DeepEqual(*got.URL, *want.URL) || !reflect.DeepEqual(got.Header, want.Header) {
				t.Errorf("readSimple:\n%+v\nhttp.ReadRequest:\n%+v", got, want)
			}
			rest, _ := br.Peek(br.Buffered())
			if _, after, _ := strings.Cut(tt.in, "\r\n\r\n"); string(rest) != after {
				t.Errorf("left %q buffered, want %q", rest, after)
			}
		})
	}
}

// TestReadHeadBufferedAgreesWithLineByLine checks that a response head read
// from the buffer in one piece reads as the same head read line by line.
func TestReadHeadBufferedAgreesWithLineByLine(t *testing.T) {
	heads := []string{
		"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nDate: x\r\n\r\nok",
		"HTTP/1.1 200 OK\r\n\r\n",
		"HTTP/1.1 204 No Content\r\nx-a:  1 \r\nX-A: 2\r\nSet-Cookie: a\r\nset-cookie: b\r\n\r\n",
		"HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\nHTTP/1.1 200 OK\r\nX-Final: 1\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\nConnection: X-Hop, keep-alive\r\nX-Hop: 1\r\n\r\n",
		"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 200 OK\nX-Bare: lf\nContent-Length: 0\n\n",
		"HTTP/1.1 200 OK\r\nX-Mixed: a\nX-B: b\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-Cr: a\rb\r\n\r\n",
		"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	}
	read := func(r io.Reader) (responseHead, http.Header, error) {
		u := &upConn{br: bufio.NewReaderSize(r, 16<<10)}
		dst := http.Header{}
		h, err := u.readHead(dst, http.MethodGet, nil)
		return h, dst, err
	}
	for _, in := range heads {
		h1, dst1, err1 := read(strings.NewReader(in))
		h2, dst2, err2 := read(iotest.OneByteReader(strings.NewReader(in)))
		if h1 != h2 || !reflect.DeepEqual(dst1, dst2) || (err1 == nil) != (err2 == nil) {
			t.Errorf("%q:\nbuffered    %+v %v %v\nline by line %+v %v %v", in, h1, dst1, err1, h2, dst2, err2)
		}
	}
}

// FuzzReadRequest checks that readSimple never panics, that every request
// it takes reads as http.ReadRequest reads it, and that it leaves the
// others untouched for http.ReadRequest.
//
//	go test -run '^$' -fuzz '^FuzzReadRequest$' -fuzztime 100000x ./internal/lb
func FuzzReadRequest(f *testing.F) {
	for _, in := range []string{
		"GET /a/b?x=1&y=%20z HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n",
		"GET / HTTP/1.1\r\nhost: h\r\nx-a: 1\r\nX-A: 2\r\nConnection: keep-alive, Close\r\n\r\nGET /2 HTTP/1.1\r\n\r\n",
		"GET /p? HTTP/1.1\r\nHost:  h \r\nX-A:\t v \t\r\nX-B:\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nab",
		"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n 2\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\nX-A: 1\r\n\r\n",
	} {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var s simpleRequest
		br := bufio.NewReaderSize(bytes.NewReader(in), 4<<10)
		_, _ = br.Peek(1)
		buffered := br.Buffered()
		got := s.readSimple(br)
		if got == nil {
			if br.Buffered() != buffered {
				t.Fatalf("readSimple consumed %d bytes of a request it left", buffered-br.Buffered())
			}
			return
		}
		want, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(in)))
		if err != nil {
			t.Fatalf("readSimple took %q, http.ReadRequest: %v", in, err)
		}
		if got.Method != want.Method || got.RequestURI != want.RequestURI || got.Proto != want.Proto ||
			got.ProtoMajor != want.ProtoMajor || got.ProtoMinor != want.ProtoMinor || got.Host != want.Host ||
			got.Close != want.Close || got.ContentLength != want.ContentLength || got.Body != want.Body ||
			!reflect.DeepEqual(*got.URL, *want.URL) || !reflect.DeepEqual(got.Header, want.Header) {
			t.Fatalf("%q\nreadSimple:\n%+v\nhttp.ReadRequest:\n%+v", in, got, want)
		}
		head, _, _ := bytes.Cut(in, []byte("\r\n\r\n"))
		if consumed := buffered - br.Buffered(); consumed != len(head)+4 {
			t.Fatalf("%q: readSimple consumed %d bytes, the head is %d", in, consumed, len(head)+4)
		}
	})
}

// FuzzResponseHead checks that readHead never panics and reads a response
// head from the buffer in one piece as it reads it line by line.
//
//	go test -run '^$' -fuzz '^FuzzResponseHead$' -fuzztime 100000x ./internal/lb
func FuzzResponseHead(f *testing.F) {
	for _, in := range []string{
		"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nDate: x\r\n\r\nok",
		"HTTP/1.1 204 No Content\r\nx-a:  1 \r\nX-A: 2\r\nSet-Cookie: a\r\nset-cookie: b\r\n\r\n",
		"HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\nHTTP/1.1 200 OK\r\nX-Final: 1\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\nConnection: X-Hop, keep-alive\r\nX-Hop: 1\r\n\r\n",
		"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 200 OK\nX-Bare: lf\nContent-Length: 0\n\n",
		"HTTP/1.1 200 OK\r\nX-Mixed: a\nX-B: b\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	} {
		f.Add([]byte(in), false)
	}
	read := func(r io.Reader, method string) (responseHead, http.Header, error) {
		u := &upConn{br: bufio.NewReaderSize(r, 16<<10)}
		dst := http.Header{}
		h, err := u.readHead(dst, method, make([]string, 4))
		return h, dst, err
	}
	f.Fuzz(func(t *testing.T, in []byte, head bool) {
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		h1, dst1, err1 := read(bytes.NewReader(in), method)
		h2, dst2, err2 := read(iotest.OneByteReader(bytes.NewReader(in)), method)
		if (err1 == nil) != (err2 == nil) || (err1 == nil && (h1 != h2 || !reflect.DeepEqual(dst1, dst2))) {
			t.Fatalf("%q:\nbuffered     %+v %v %v\nline by line %+v %v %v", in, h1, dst1, err1, h2, dst2, err2)
		}
	})
}
