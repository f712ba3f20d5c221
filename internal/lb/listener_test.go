package lb

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestApplyUnderLoad changes the rules and the targets over and over
// while clients send requests on keep-alive connections: no request fails
// and no connection is dropped.
func TestApplyUnderLoad(t *testing.T) {
	a, bb := newBackend(t, "a"), newBackend(t, "b")
	b := newTestBalancer(t, Config{})
	snapFor := func(i int) Snapshot {
		to := "ga"
		if i%2 == 1 {
			to = "gb"
		}
		return Snapshot{
			LoadBalancers: []LoadBalancer{{ID: "lb", Address: "127.0.3.7", Listeners: []Listener{{ID: "l", Protocol: ProtocolHTTP, Rules: []Rule{
				{Priority: 1 + i%3, Conditions: []Condition{on(FieldPathPattern, "/x/*")}, Action: forwardTo(to)},
				{IsDefault: true, Action: forwardTo("ga")},
			}}}}},
			TargetGroups: []TargetGroup{
				{ID: "ga", HealthCheck: HealthCheck{Disabled: true}, Targets: targetsOf(a.addr())},
				{ID: "gb", HealthCheck: HealthCheck{Disabled: true}, Targets: targetsOf(bb.addr(), a.addr())[:1+i%2]},
			},
		}
	}
	apply(t, b, snapFor(0))
	url := baseURL(t, b, "lb", "l")
	if !strings.HasPrefix(url, "http://127.0.3.7:") {
		t.Fatalf("listener at %s", url)
	}

	var dials atomic.Int64
	const clients = 4
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var failures atomic.Int64
	var requests atomic.Int64
	for range clients {
		wg.Go(func() {
			d := &net.Dialer{}
			c := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1,
				DialContext: func(ctx context.Context, n, addr string) (net.Conn, error) {
					dials.Add(1)
					return d.DialContext(ctx, n, addr)
				}}}
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(url + "/x/y")
				if err != nil {
					failures.Add(1)
					t.Error(err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				requests.Add(1)
				if resp.StatusCode != 200 || (string(body) != "a" && string(body) != "b") {
					failures.Add(1)
					t.Errorf("%d %q", resp.StatusCode, body)
				}
			}
		})
	}
	for i := range 200 {
		apply(t, b, snapFor(i))
		if i%20 == 0 {
			// Let requests interleave with the changes.
			n := requests.Load()
			eventually(t, "requests to flow", func() bool { return requests.Load() > n })
		}
	}
	close(stop)
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d of %d requests failed", failures.Load(), requests.Load())
	}
	if dials.Load() != clients {
		t.Errorf("%d clients dialed %d times: connections were dropped", clients, dials.Load())
	}
	t.Logf("%d requests across 200 snapshots", requests.Load())
}

func TestListenerLifecycle(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	be := newBackendFunc(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		_, _ = w.Write([]byte("ok"))
	})
	b := newTestBalancer(t, Config{})
	two := oneListener(targetsOf(be.Listener.Addr().String())...)
	two.LoadBalancers[0].Listeners = append(two.LoadBalancers[0].Listeners,
		Listener{ID: "l2", Protocol: ProtocolHTTP, Rules: []Rule{{IsDefault: true, Action: forwardTo("tg")}}})
	apply(t, b, two)
	url1, url2 := baseURL(t, b, "lb", "l"), baseURL(t, b, "lb", "l2")

	// A request in flight on l2 when l2 is removed completes.
	var wg sync.WaitGroup
	var code int
	wg.Go(func() { code, _, _ = get(t, newClient(), url2+"/slow") })
	<-started
	apply(t, b, oneListener(targetsOf(be.Listener.Addr().String())...))
	if _, err := net.Dial("tcp", strings.TrimPrefix(url2, "http://")); err == nil {
		t.Error("the removed listener still accepts connections")
	}
	close(release)
	wg.Wait()
	if code != 200 {
		t.Errorf("in-flight request on the removed listener: %d", code)
	}
	if c, _, _ := get(t, newClient(), url1); c != 200 {
		t.Errorf("remaining listener: %d", c)
	}
	if st := b.Status(); len(st) != 1 || st[0].ListenerID != "l" || st[0].Err != nil {
		t.Errorf("Status = %+v", st)
	}

	// A new port rebinds.
	moved := oneListener(targetsOf(be.Listener.Addr().String())...)
	_, port, _ := net.SplitHostPort(freeAddr(t))
	fmt.Sscan(port, &moved.LoadBalancers[0].Listeners[0].Port)
	apply(t, b, moved)
	if got := baseURL(t, b, "lb", "l"); got != "http://127.0.0.1:"+port {
		t.Errorf("moved listener at %s", got)
	}
	if c, _, _ := get(t, newClient(), "http://127.0.0.1:"+port); c != 200 {
		t.Errorf("moved listener: %d", c)
	}
	if _, err := net.Dial("tcp", strings.TrimPrefix(url1, "http://")); err == nil {
		t.Error("the old port still accepts connections")
	}
}

func TestBindErrors(t *testing.T) {
	be := newBackend(t, "a")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port

	b := newTestBalancer(t, Config{})
	snap := oneListener(targetsOf(be.addr())...)
	lb := &snap.LoadBalancers[0]
	lb.Listeners = append(lb.Listeners,
		Listener{ID: "busy", Port: takenPort, Protocol: ProtocolHTTP, Rules: []Rule{{IsDefault: true, Action: forwardTo("tg")}}})
	snap.LoadBalancers = append(snap.LoadBalancers, LoadBalancer{ID: "far", Address: "192.0.2.1", Listeners: []Listener{
		{ID: "l", Port: 8080, Protocol: ProtocolHTTP, Rules: []Rule{{IsDefault: true, Action: forwardTo("tg")}}}}})
	unprivileged, _ := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	start, _ := strconv.Atoi(strings.TrimSpace(string(unprivileged)))
	wantPriv := os.Geteuid() != 0 && start > 81
	if wantPriv {
		lb.Listeners = append(lb.Listeners,
			Listener{ID: "priv", Port: 81, Protocol: ProtocolHTTP, Rules: []Rule{{IsDefault: true, Action: forwardTo("tg")}}})
	}
	err = b.Apply(context.Background(), snap)
	var be1 *BindError
	if !errors.As(err, &be1) {
		t.Fatalf("Apply = %v, want a *BindError", err)
	}
	if !errors.Is(err, syscall.EADDRINUSE) || !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Errorf("Apply = %v", err)
	}
	if wantPriv && !errors.Is(err, syscall.EACCES) {
		t.Errorf("privileged port: %v", err)
	}
	if !strings.Contains(err.Error(), `listener "busy": cannot listen on 127.0.0.1:`+fmt.Sprint(takenPort)+": the address is already in use") {
		t.Errorf("message: %v", err)
	}
	for _, st := range b.Status() {
		switch {
		case st.LoadBalancerID == "lb" && st.ListenerID == "l":
			if st.Err != nil {
				t.Errorf("good listener: %v", st.Err)
			}
		case st.Err == nil:
			t.Errorf("%s/%s serves", st.LoadBalancerID, st.ListenerID)
		}
	}
	// The good listener serves regardless.
	if c, _, _ := get(t, newClient(), baseURL(t, b, "lb", "l")); c != 200 {
		t.Errorf("good listener: %d", c)
	}
	// Once the port is free, the next Apply binds it.
	taken.Close()
	snap.LoadBalancers = snap.LoadBalancers[:1]
	lb.Listeners = lb.Listeners[:2]
	apply(t, b, snap)
	if c, _, _ := get(t, newClient(), fmt.Sprintf("http://127.0.0.1:%d", takenPort)); c != 200 {
		t.Errorf("rebound listener: %d", c)
	}
}

func TestInvalidListenerKeepsServing(t *testing.T) {
	be := newBackend(t, "a")
	b := newTestBalancer(t, Config{})
	snap := oneListener(targetsOf(be.addr())...)
	apply(t, b, snap)
	url := baseURL(t, b, "lb", "l")
	bad := oneListener(targetsOf(be.addr())...)
	bad.LoadBalancers[0].Listeners[0].Rules[0].Action = forwardTo("missing")
	if err := b.Apply(context.Background(), bad); err == nil {
		t.Fatal("Apply accepted a forward to a missing group")
	}
	if st := b.Status(); st[0].Err == nil || !strings.Contains(st[0].Err.Error(), `"missing"`) {
		t.Errorf("Status = %+v", st)
	}
	if c, body, _ := get(t, newClient(), url); c != 200 || body != "a" {
		t.Errorf("after an invalid snapshot: %d %q", c, body)
	}
}

func TestIdleTimeoutClosesClientConnections(t *testing.T) {
	be := newBackend(t, "a")
	b := newTestBalancer(t, Config{})
	snap := oneListener(targetsOf(be.addr())...)
	snap.LoadBalancers[0].IdleTimeout = 100 * time.Millisecond
	apply(t, b, snap)
	conn, err := net.Dial("tcp", strings.TrimPrefix(baseURL(t, b, "lb", "l"), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(conn)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
		t.Fatal(resp, err)
	} else {
		io.Copy(io.Discard, resp.Body)
	}
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("closed after %v", d)
	}
}

// selfSigned returns a certificate for host names, signed by itself.
func selfSigned(t testing.TB, names ...string) (*tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func TestHTTPSAndHTTP2(t *testing.T) {
	var mu sync.Mutex
	var proto string
	be := newBackendFunc(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		proto = r.Header.Get("X-Forwarded-Proto")
		mu.Unlock()
		_, _ = io.WriteString(w, "secure "+r.Proto)
	})
	cert1, pool1 := selfSigned(t, "one.example")
	cert2, pool2 := selfSigned(t, "two.example")
	b := newTestBalancer(t, Config{})
	snap := oneListener(targetsOf(be.Listener.Addr().String())...)
	l := &snap.LoadBalancers[0].Listeners[0]
	l.Protocol, l.Certificate = ProtocolHTTPS, cert1
	snap.LoadBalancers[0].HTTP2 = true
	apply(t, b, snap)
	url := baseURL(t, b, "lb", "l")
	if !strings.HasPrefix(url, "https://") {
		t.Fatal(url)
	}
	client := func(pool *x509.CertPool, name string) *http.Client {
		return &http.Client{Transport: &http.Transport{Proxy: nil, ForceAttemptHTTP2: true,
			TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: name}}}
	}
	check := func(c *http.Client, wantMajor int) {
		t.Helper()
		resp, err := c.Get(url + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// The target always speaks HTTP/1.1 with the load balancer.
		if resp.StatusCode != 200 || resp.ProtoMajor != wantMajor || string(body) != "secure HTTP/1.1" {
			t.Errorf("%d %s %q, want HTTP/%d", resp.StatusCode, resp.Proto, body, wantMajor)
		}
		mu.Lock()
		defer mu.Unlock()
		if proto != "https" {
			t.Errorf("X-Forwarded-Proto %q", proto)
		}
	}
	c1 := client(pool1, "one.example")
	check(c1, 2)
	// An HTTP/2 connection left open delays the balancer's close by the
	// second net/http gives GOAWAY.
	c1.CloseIdleConnections()

	// HTTP/2 off: HTTP/1.1 over TLS. A new certificate: new handshakes
	// use it, without rebinding.
	snap.LoadBalancers[0].HTTP2 = false
	l.Certificate = cert2
	apply(t, b, snap)
	check(client(pool2, "two.example"), 1)
	if _, err := client(pool1, "one.example").Get(url); err == nil {
		t.Error("the old certificate is still served")
	}
	if baseURL(t, b, "lb", "l") != url {
		t.Error("the listener moved")
	}
}

func TestWebSocket(t *testing.T) {
	be := newBackendFunc(t, func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || !strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade") {
			http.Error(w, "not an upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
			r.Header.Get("Sec-WebSocket-Key")+"-accepted")
		brw.Flush()
		// Echo lines, upper-cased, until the client closes.
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			brw.WriteString(strings.ToUpper(line))
			brw.Flush()
		}
	})
	b := newTestBalancer(t, Config{})
	apply(t, b, oneListener(targetsOf(be.Listener.Addr().String())...))
	conn, err := net.Dial("tcp", strings.TrimPrefix(baseURL(t, b, "lb", "l"), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	// The first message follows the handshake at once.
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: k1\r\nSec-WebSocket-Version: 13\r\n\r\nhello\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != "k1-accepted" || !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		t.Fatalf("handshake: %d %v", resp.StatusCode, resp.Header)
	}
	for _, msg := range []string{"hello", "world"} {
		if msg != "hello" {
			io.WriteString(conn, msg+"\n")
		}
		line, err := br.ReadString('\n')
		if err != nil || line != strings.ToUpper(msg)+"\n" {
			t.Fatalf("echo of %q: %q %v", msg, line, err)
		}
	}
}

func TestHTTPSTargets(t *testing.T) {
	for _, version := range []string{"HTTP1", "HTTP2"} {
		t.Run(version, func(t *testing.T) {
			be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, r.Proto+" "+r.Header.Get("X-Forwarded-For"))
			}))
			be.EnableHTTP2 = true
			be.StartTLS()
			defer be.Close()
			b := newTestBalancer(t, Config{})
			snap := oneListener(targetsOf(be.Listener.Addr().String())...)
			tg := &snap.TargetGroups[0]
			tg.Protocol, tg.ProtocolVersion = ProtocolHTTPS, version
			tg.HealthCheck = HealthCheck{Protocol: ProtocolHTTPS, Interval: 50 * time.Millisecond, Timeout: 40 * time.Millisecond}
			apply(t, b, snap)
			runBalancer(t, b)
			eventually(t, "the HTTPS target healthy", func() bool { return b.Health("tg")[0].State == StateHealthy })
			code, body, _ := get(t, newClient(), baseURL(t, b, "lb", "l"))
			want := "HTTP/1.1 127.0.0.1"
			if version == "HTTP2" {
				want = "HTTP/2.0 127.0.0.1"
			}
			if code != 200 || body != want {
				t.Errorf("%d %q, want %q", code, body, want)
			}
		})
	}
}

func TestWebSocketIdleAndDrain(t *testing.T) {
	be := newBackendFunc(t, func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		io.Copy(io.Discard, brw)
	})
	open := func(t *testing.T, url string) (net.Conn, *bufio.Reader) {
		conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		br := bufio.NewReader(conn)
		if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 101 {
			t.Fatal(resp, err)
		}
		return conn, br
	}
	t.Run("idle", func(t *testing.T) {
		b := newTestBalancer(t, Config{})
		snap := oneListener(targetsOf(be.Listener.Addr().String())...)
		snap.LoadBalancers[0].IdleTimeout = 100 * time.Millisecond
		apply(t, b, snap)
		conn, br := open(t, baseURL(t, b, "lb", "l"))
		defer conn.Close()
		if _, err := br.ReadByte(); err != io.EOF {
			t.Errorf("idle tunnel: %v, want EOF", err)
		}
	})
	t.Run("drain", func(t *testing.T) {
		rec := &recorder{}
		b := newTestBalancer(t, Config{OnHealth: rec.add})
		snap := oneListener(targetsOf(be.Listener.Addr().String())...)
		apply(t, b, snap)
		runBalancer(t, b)
		conn, br := open(t, baseURL(t, b, "lb", "l"))
		defer conn.Close()
		snap.TargetGroups[0].Targets[0].Draining = true
		snap.TargetGroups[0].Targets[0].DrainUntil = time.Now().Add(100 * time.Millisecond)
		apply(t, b, snap)
		if _, err := br.ReadByte(); err != io.EOF {
			t.Errorf("tunnel of a drained target: %v, want EOF", err)
		}
		if h := b.Health("tg")[0]; h.State != StateUnused {
			t.Errorf("target %+v", h)
		}
	})
}
