package lb

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestForwardBasics(t *testing.T) {
	be := newBackend(t, "a")
	b := newTestBalancer(t, Config{})
	apply(t, b, oneListener(targetsOf(be.addr())...))
	url := baseURL(t, b, "lb", "l")
	c := newClient()

	code, body, hdr := get(t, c, url+"/some/path?x=1&y=%20z", "Host", "example.com:8080", "X-Custom", "v1")
	if code != 200 || body != "a" || hdr.Get("X-Backend") != "a" {
		t.Fatalf("GET = %d %q %v", code, body, hdr)
	}
	r := be.last()
	if r.URL.RequestURI() != "/some/path?x=1&y=%20z" {
		t.Errorf("target saw %q", r.URL.RequestURI())
	}
	if r.Host != "example.com:8080" {
		t.Errorf("target saw Host %q", r.Host)
	}
	if r.Header.Get("X-Custom") != "v1" {
		t.Errorf("custom header lost: %v", r.Header)
	}
	if ua := r.Header.Values("User-Agent"); len(ua) != 1 || !strings.HasPrefix(ua[0], "Go-http-client") {
		// The test client's own User-Agent, passed through.
		t.Errorf("User-Agent = %q", ua)
	}

	// POST bodies, with a length and chunked.
	for _, chunked := range []bool{false, true} {
		payload := strings.Repeat("p", 100_000)
		var rd io.Reader = strings.NewReader(payload)
		if chunked {
			rd = io.MultiReader(rd) // unknown length
		}
		echo := newBackendFunc(t, func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%d %v", len(b), r.TransferEncoding)
		})
		apply(t, b, oneListener(targetsOf(echo.Listener.Addr().String())...))
		resp, err := c.Post(url+"/echo", "text/plain", rd)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := "100000 []"
		if chunked {
			want = "100000 [chunked]"
		}
		if string(got) != want {
			t.Errorf("chunked=%v: target saw %q, want %q", chunked, got, want)
		}
	}
}

func TestHopByHopHeaders(t *testing.T) {
	var seen http.Header
	be := newBackendFunc(t, func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		w.Header().Set("Connection", "X-Drop-Me")
		w.Header().Set("X-Drop-Me", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Keep", "1")
		_, _ = io.WriteString(w, "ok")
	})
	b := newTestBalancer(t, Config{})
	apply(t, b, oneListener(targetsOf(be.Listener.Addr().String())...))
	url := baseURL(t, b, "lb", "l")

	code, _, hdr := get(t, newClient(), url, "Connection", "X-Secret", "X-Secret", "s", "Proxy-Authorization", "p",
		"Keep-Alive", "1", "Te", "trailers, deflate", "X-Keep", "k")
	if code != 200 {
		t.Fatal(code)
	}
	for _, h := range []string{"X-Secret", "Proxy-Authorization", "Keep-Alive", "Connection"} {
		if seen.Get(h) != "" {
			t.Errorf("target saw hop-by-hop %s: %q", h, seen.Get(h))
		}
	}
	if seen.Get("Te") != "trailers" || seen.Get("X-Keep") != "k" {
		t.Errorf("target headers %v", seen)
	}
	if hdr.Get("X-Drop-Me") != "" || hdr.Get("Keep-Alive") != "" || hdr.Get("X-Keep") != "1" {
		t.Errorf("client got %v", hdr)
	}
}

func TestForwardedHeaders(t *testing.T) {
	traceRoot := regexp.MustCompile(`^Root=1-[0-9a-f]{8}-[0-9a-f]{24}$`)
	traceSelf := regexp.MustCompile(`^Self=1-[0-9a-f]{8}-[0-9a-f]{24};Root=1-5759e988-bd862e3fe1be46a994272793;CalledFrom=app$`)
	for _, tc := range []struct {
		mode    string
		port    bool
		sent    []string // X-Forwarded-For values the client sends
		wantXFF string   // with %s for the client's address
	}{
		{mode: "", wantXFF: "%s"},
		{mode: XFFAppend, sent: []string{"203.0.113.7"}, wantXFF: "203.0.113.7, %s"},
		{mode: XFFAppend, sent: []string{"203.0.113.7", "198.51.100.1"}, wantXFF: "203.0.113.7, 198.51.100.1, %s"},
		{mode: XFFAppend, port: true, wantXFF: "%s:port"},
		{mode: XFFPreserve, sent: []string{"203.0.113.7"}, wantXFF: "203.0.113.7"},
		{mode: XFFPreserve, wantXFF: ""},
		{mode: XFFRemove, sent: []string{"203.0.113.7"}, wantXFF: ""},
	} {
		t.Run(fmt.Sprintf("%s-port=%v-%d", tc.mode, tc.port, len(tc.sent)), func(t *testing.T) {
			be := newBackend(t, "a")
			b := newTestBalancer(t, Config{})
			snap := oneListener(targetsOf(be.addr())...)
			snap.LoadBalancers[0].XFFMode = tc.mode
			snap.LoadBalancers[0].XFFClientPort = tc.port
			apply(t, b, snap)
			base := baseURL(t, b, "lb", "l")
			_, port, _ := net.SplitHostPort(strings.TrimPrefix(base, "http://"))

			// A raw connection, to know the client's port.
			conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			req := "GET / HTTP/1.1\r\nHost: x\r\nX-Amzn-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272793;Self=1-00000000-000000000000000000000000;CalledFrom=app\r\n"
			for _, v := range tc.sent {
				req += "X-Forwarded-For: " + v + "\r\n"
			}
			if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("%v %v", resp, err)
			}
			r := be.last()
			want := tc.wantXFF
			if strings.Contains(want, "%s") {
				want = strings.Replace(want, "%s", "127.0.0.1", 1)
			}
			want = strings.Replace(want, "port", fmt.Sprint(conn.LocalAddr().(*net.TCPAddr).Port), 1)
			if got := strings.Join(r.Header.Values("X-Forwarded-For"), ","); got != want {
				t.Errorf("X-Forwarded-For = %q, want %q", got, want)
			}
			if r.Header.Get("X-Forwarded-Proto") != "http" || r.Header.Get("X-Forwarded-Port") != port {
				t.Errorf("X-Forwarded-Proto %q, -Port %q (want http, %s)", r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-Port"), port)
			}
			if got := r.Header.Get("X-Amzn-Trace-Id"); !traceSelf.MatchString(got) {
				t.Errorf("X-Amzn-Trace-Id = %q", got)
			}
		})
	}
	t.Run("new trace", func(t *testing.T) {
		be := newBackend(t, "a")
		b := newTestBalancer(t, Config{Now: func() time.Time { return time.Unix(0x5759e988, 0) }})
		apply(t, b, oneListener(targetsOf(be.addr())...))
		get(t, newClient(), baseURL(t, b, "lb", "l"))
		got := be.last().Header.Get("X-Amzn-Trace-Id")
		if !traceRoot.MatchString(got) || !strings.HasPrefix(got, "Root=1-5759e988-") {
			t.Errorf("X-Amzn-Trace-Id = %q", got)
		}
	})
}

func TestHeaderLimits(t *testing.T) {
	be := newBackend(t, "a")
	b := newTestBalancer(t, Config{})
	apply(t, b, oneListener(targetsOf(be.addr())...))
	addr := strings.TrimPrefix(baseURL(t, b, "lb", "l"), "http://")
	big := func(n int) string { return strings.Repeat("a", n) }
	for _, tc := range []struct {
		name string
		req  string
		want int
	}{
		{"ok", "GET / HTTP/1.1\r\nHost: x\r\nX-A: " + big(16000) + "\r\n\r\n", 200},
		{"request line over 16K", "GET /" + big(16*1024) + " HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"header over 16K", "GET / HTTP/1.1\r\nHost: x\r\nX-A: " + big(16*1024) + "\r\n\r\n", 400},
		{"headers over 64K", "GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-A: "+big(15000)+"\r\n", 5) + "\r\n", 400},
		{"headers far over 64K", "GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-A: "+big(15000)+"\r\n", 8) + "\r\n", 400},
		{"no host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"malformed", "GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400},
		{"TRACE", "TRACE / HTTP/1.1\r\nHost: x\r\n\r\n", 405},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			go func() { _, _ = io.WriteString(conn, tc.req) }()
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, body)
			}
			if tc.want != 200 && (resp.Header.Get("Content-Type") != "text/html" || !strings.Contains(string(body), "<h1>"+fmt.Sprint(tc.want))) {
				t.Errorf("error answer %v %q", resp.Header, body)
			}
		})
	}
}

func TestResponseHeaderLimit(t *testing.T) {
	be := newBackendFunc(t, func(w http.ResponseWriter, r *http.Request) {
		n := 31 * 1024
		if r.URL.Path == "/big" {
			n = 33 * 1024
		}
		w.Header().Set("X-Big", strings.Repeat("b", n))
	})
	b := newTestBalancer(t, Config{})
	apply(t, b, oneListener(targetsOf(be.Listener.Addr().String())...))
	url := baseURL(t, b, "lb", "l")
	c := newClient()
	if code, _, _ := get(t, c, url+"/ok"); code != 200 {
		t.Errorf("31 KiB of response headers: %d", code)
	}
	if code, _, _ := get(t, c, url+"/big"); code != 502 {
		t.Errorf("33 KiB of response headers: %d, want 502", code)
	}
}

func TestTargetErrors(t *testing.T) {
	t.Run("connection refused: 502", func(t *testing.T) {
		b := newTestBalancer(t, Config{})
		apply(t, b, oneListener(targetsOf(freeAddr(t))...))
		code, body, hdr := get(t, newClient(), baseURL(t, b, "lb", "l"))
		if code != 502 || !strings.Contains(body, "502 Bad Gateway") || hdr.Get("Content-Type") != "text/html" {
			t.Errorf("%d %q %v", code, body, hdr)
		}
	})
	t.Run("reset: 502", func(t *testing.T) {
		be := newBackendFunc(t, func(w http.ResponseWriter, r *http.Request) {
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
		})
		b := newTestBalancer(t, Config{})
		apply(t, b, oneListener(targetsOf(be.Listener.Addr().String())...))
		if code, _, _ := get(t, newClient(), baseURL(t, b, "lb", "l")); code != 502 {
			t.Errorf("status %d", code)
		}
	})
	t.Run("no targets: 503", func(t *testing.T) {
		b := newTestBalancer(t, Config{})
		apply(t, b, oneListener())
		if code, body, _ := get(t, newClient(), baseURL(t, b, "lb", "l")); code != 503 || !strings.Contains(body, "503 Service Unavailable") {
			t.Errorf("%d %q", code, body)
		}
	})
	t.Run("idle timeout: 504", func(t *testing.T) {
		release := make(chan struct{})
		be := newBackendFunc(t, func(w http.ResponseWriter, r *http.Request) { <-release })
		defer close(release)
		b := newTestBalancer(t, Config{})
		snap := oneListener(targetsOf(be.Listener.Addr().String())...)
		snap.LoadBalancers[0].IdleTimeout = 200 * time.Millisecond
		apply(t, b, snap)
		if code, _, _ := get(t, newClient(), baseURL(t, b, "lb", "l")); code != 504 {
			t.Errorf("status %d", code)
		}
	})
	t.Run("truncated body aborts the client connection", func(t *testing.T) {
		be := newBackendFunc(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "100")
			_, _ = io.WriteString(w, "only ten b")
			conn, buf, _ := http.NewResponseController(w).Hijack()
			buf.Flush()
			conn.Close()
		})
		b := newTestBalancer(t, Config{})
		apply(t, b, oneListener(targetsOf(be.Listener.Addr().String())...))
		resp, err := newClient().Get(baseURL(t, b, "lb", "l"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Error("the client read a truncated body without error")
		}
	})
}

func TestResponseFraming(t *testing.T) {
	be := newBackendFunc(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			w.Header().Set("Trailer", "X-Sum")
			for i := range 3 {
				fmt.Fprintf(w, "part%d;", i)
				w.(http.Flusher).Flush()
			}
			w.Header().Set("X-Sum", "3")
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/head":
			w.Header().Set("Content-Length", "1234")
		default:
			_, _ = io.WriteString(w, strings.Repeat("x", 200_000))
		}
	})
	b := newTestBalancer(t, Config{})
	apply(t, b, oneListener(targetsOf(be.Listener.Addr().String())...))
	url := baseURL(t, b, "lb", "l")
	c := newClient()

	resp, err := c.Get(url + "/chunked")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "part0;part1;part2;" || resp.Trailer.Get("X-Sum") != "3" {
		t.Errorf("chunked: %q trailers %v", body, resp.Trailer)
	}
	if code, body, _ := get(t, c, url+"/empty"); code != 204 || body != "" {
		t.Errorf("204: %d %q", code, body)
	}
	resp, err = c.Head(url + "/head")
	if err != nil || resp.StatusCode != 200 || resp.ContentLength != 1234 {
		t.Errorf("HEAD: %v %v", resp, err)
	}
	if code, body, _ := get(t, c, url+"/large"); code != 200 || len(body) != 200_000 {
		t.Errorf("large: %d %d", code, len(body))
	}
}

func TestKeepAliveToTargets(t *testing.T) {
	conns := map[string]bool{}
	var mu = make(chan struct{}, 1)
	be := newBackendFunc(t, func(w http.ResponseWriter, r *http.Request) {
		mu <- struct{}{}
		conns[r.RemoteAddr] = true
		<-mu
	})
	b := newTestBalancer(t, Config{})
	apply(t, b, oneListener(targetsOf(be.Listener.Addr().String())...))
	url := baseURL(t, b, "lb", "l")
	c := newClient()
	for range 20 {
		if code, _, _ := get(t, c, url); code != 200 {
			t.Fatal(code)
		}
	}
	if len(conns) != 1 {
		t.Errorf("20 sequential requests used %d connections to the target, want 1", len(conns))
	}
}

// TestStaleTargetConnections: a target that closes idle keep-alive
// connections quickly costs no failed request, with or without a body.
func TestStaleTargetConnections(t *testing.T) {
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "ok")
	}))
	var mu sync.Mutex
	var conns []net.Conn
	be.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateIdle {
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}
	be.Start()
	defer be.Close()
	b := newTestBalancer(t, Config{})
	apply(t, b, oneListener(targetsOf(be.Listener.Addr().String())...))
	url := baseURL(t, b, "lb", "l")
	c := newClient()
	closeIdle := func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		conns = nil
		mu.Unlock()
	}
	for i := range 10 {
		closeIdle() // the target drops the pooled connection
		var resp *http.Response
		var err error
		if i%2 == 0 {
			resp, err = c.Get(url)
		} else {
			resp, err = c.Post(url, "text/plain", strings.NewReader("body"))
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("request %d after the target closed its idle connection: %d %q", i, resp.StatusCode, body)
		}
	}
}

func TestDropInvalidHeaders(t *testing.T) {
	for _, drop := range []bool{false, true} {
		be := newBackend(t, "a")
		b := newTestBalancer(t, Config{})
		snap := oneListener(targetsOf(be.addr())...)
		snap.LoadBalancers[0].DropInvalidHeaders = drop
		apply(t, b, snap)
		conn, err := net.Dial("tcp", strings.TrimPrefix(baseURL(t, b, "lb", "l"), "http://"))
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\nX_Under: 1\r\nX-Fine: 2\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		conn.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatal(resp, err)
		}
		h := be.last().Header
		if got := h.Get("X_under") != ""; got == drop || h.Get("X-Fine") != "2" {
			t.Errorf("drop=%v: target saw %v", drop, h)
		}
	}
}
