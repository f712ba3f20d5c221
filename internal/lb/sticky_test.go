package lb

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	neturl "net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/errdefs"
)

// fakeClock is a settable Config.Now.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *fakeClock) now() time.Time                    { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) add(d time.Duration)               { c.ns.Add(int64(d)) }
func (c *fakeClock) config() Config                    { return Config{Now: c.now} }
func (c *fakeClock) expires(d time.Duration) time.Time { return c.now().Add(d).Truncate(time.Second) }

// stickyBackend is a target that answers with its name and, like an
// application with its own cookies, sets "own=<name>" on every response
// and "SESSION=<name>" on paths ending in /login.
func stickyBackend(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", "own="+name+"; Path=/")
		if strings.HasSuffix(r.URL.Path, "/login") {
			w.Header().Add("Set-Cookie", "SESSION="+name+"; Path=/; HttpOnly")
		}
		_, _ = io.WriteString(w, name)
	}
}

// stickyTargets starts n named targets ("t0", "t1", ...) over HTTP or
// HTTPS and returns their names by address.
func stickyTargets(t *testing.T, protocol string, n int) map[string]string {
	t.Helper()
	names := map[string]string{}
	for i := range n {
		name := "t" + string(rune('0'+i))
		s := httptest.NewUnstartedServer(stickyBackend(name))
		if protocol == ProtocolHTTPS {
			s.StartTLS()
		} else {
			s.Start()
		}
		t.Cleanup(s.Close)
		names[s.Listener.Addr().String()] = name
	}
	return names
}

// stickySnapshot is oneListener over the targets, with the group's
// protocol and stickiness.
func stickySnapshot(targets map[string]string, protocol string, st Stickiness) Snapshot {
	var addrs []string
	for a := range targets {
		addrs = append(addrs, a)
	}
	snap := oneListener(targetsOf(addrs...)...)
	snap.TargetGroups[0].Protocol = protocol
	snap.TargetGroups[0].Stickiness = st
	return snap
}

// cookieSet returns the Set-Cookie of a response that sets name, or nil.
func cookieSet(h http.Header, name string) *http.Cookie {
	for _, line := range h.Values("Set-Cookie") {
		if c, err := http.ParseSetCookie(line); err == nil && c.Name == name {
			return c
		}
	}
	return nil
}

// rawCookieSet is the Set-Cookie line that sets name, or "".
func rawCookieSet(h http.Header, name string) string {
	for _, line := range h.Values("Set-Cookie") {
		if strings.HasPrefix(line, name+"=") {
			return line
		}
	}
	return ""
}

// spread sends n requests with the given headers and counts the answers
// by body.
func spread(t *testing.T, c *http.Client, url string, n int, hdr ...string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for range n {
		code, body, _ := get(t, c, url, hdr...)
		if code != 200 {
			t.Fatalf("GET %s: %d %s", url, code, body)
		}
		out[body]++
	}
	return out
}

// TestStickyLBCookie: with lb_cookie stickiness, every response names its
// target in AWSALB and AWSALBCORS (opaque values, Expires after the
// duration, Path=/, the CORS one SameSite=None; Secure) after the target's
// own cookies, and requests carrying either cookie stay on that target
// while round robin would spread them; over the load balancer's HTTP/1
// pool (HTTP targets) and net/http's Transport (HTTPS targets).
func TestStickyLBCookie(t *testing.T) {
	for _, protocol := range []string{ProtocolHTTP, ProtocolHTTPS} {
		t.Run(protocol, func(t *testing.T) {
			clock := newFakeClock(time.Date(2030, 5, 6, 7, 8, 9, 500e6, time.UTC))
			targets := stickyTargets(t, protocol, 3)
			b := newTestBalancer(t, clock.config())
			apply(t, b, stickySnapshot(targets, protocol, Stickiness{Enabled: true, Duration: time.Hour}))
			url := baseURL(t, b, "lb", "l")
			c := newClient()

			code, first, hdr := get(t, c, url)
			if code != 200 {
				t.Fatalf("GET: %d %s", code, first)
			}
			if sc := hdr.Values("Set-Cookie"); len(sc) != 3 || sc[0] != "own="+first+"; Path=/" {
				t.Fatalf("Set-Cookie %q: want the target's own cookie, then AWSALB and AWSALBCORS", sc)
			}
			lbc, cors := cookieSet(hdr, "AWSALB"), cookieSet(hdr, "AWSALBCORS")
			if lbc == nil || cors == nil {
				t.Fatalf("no AWSALB or AWSALBCORS in %q", hdr.Values("Set-Cookie"))
			}
			want := clock.expires(time.Hour)
			if !lbc.Expires.Equal(want) || lbc.Path != "/" || lbc.MaxAge != 0 || lbc.Secure || lbc.SameSite != 0 {
				t.Errorf("AWSALB: %s, want Expires %v and Path=/", rawCookieSet(hdr, "AWSALB"), want)
			}
			if !cors.Expires.Equal(want) || cors.Path != "/" || !cors.Secure || cors.SameSite != http.SameSiteNoneMode || cors.Value != lbc.Value {
				t.Errorf("AWSALBCORS: %s, want AWSALB's value and expiry with SameSite=None; Secure", rawCookieSet(hdr, "AWSALBCORS"))
			}
			for addr := range targets {
				host, port, _ := strings.Cut(addr, ":")
				if strings.Contains(lbc.Value, host) || strings.Contains(lbc.Value, port) {
					t.Errorf("AWSALB=%s names the target's address %s", lbc.Value, addr)
				}
			}

			// Without the cookie, round robin spreads; with either cookie,
			// every request goes to the first target.
			if got := spread(t, c, url, 6); len(got) != 3 {
				t.Errorf("without the cookie: %v, want all three targets", got)
			}
			for _, cookie := range []string{"AWSALB=" + lbc.Value, "AWSALBCORS=" + lbc.Value, "a=1; AWSALB=" + lbc.Value + "; b=2", `AWSALB="` + lbc.Value + `"`} {
				if got := spread(t, c, url, 12, "Cookie", cookie); got[first] != 12 {
					t.Errorf("Cookie %q: %v, want all on %s", cookie, got, first)
				}
			}

			// Every response renews the cookie.
			clock.add(90 * time.Second)
			_, _, hdr = get(t, c, url, "Cookie", "AWSALB="+lbc.Value)
			if again := cookieSet(hdr, "AWSALB"); again == nil || again.Value != lbc.Value || !again.Expires.Equal(clock.expires(time.Hour)) {
				t.Errorf("renewed AWSALB: %s", rawCookieSet(hdr, "AWSALB"))
			}
		})
	}
}

// TestStickyTargetReplaced: a request whose sticky target became
// unhealthy, or is draining, goes to another target, and the cookie now
// names that one; the session stays there when the first target recovers.
func TestStickyTargetReplaced(t *testing.T) {
	for _, st := range []Stickiness{
		{Enabled: true, Type: StickinessLBCookie, Duration: time.Hour},
		{Enabled: true, Type: StickinessAppCookie, CookieName: "SESSION", Duration: time.Hour},
	} {
		t.Run(st.Type, func(t *testing.T) {
			targets := stickyTargets(t, ProtocolHTTP, 2)
			b := newTestBalancer(t, Config{})
			snap := stickySnapshot(targets, ProtocolHTTP, st)
			snap.TargetGroups[0].HealthCheck = HealthCheck{} // checked, but by setHealth only
			apply(t, b, snap)
			byName := map[string]string{}
			for addr, name := range targets {
				byName[name] = addr
				setHealth(t, b, "tg", addr, StateHealthy)
			}
			url := baseURL(t, b, "lb", "l")
			c := newClient()
			name := "AWSALB"
			if st.Type == StickinessAppCookie {
				name = "AWSALBAPP-0"
			}
			// sticky sends a request with the session's cookies and returns
			// the target and the value of the renewed cookie.
			sticky := func(value string) (string, string) {
				t.Helper()
				cookie := name + "=" + value
				if st.Type == StickinessAppCookie {
					cookie += "; SESSION=x"
				}
				code, body, hdr := get(t, c, url, "Cookie", cookie)
				lc := cookieSet(hdr, name)
				if code != 200 || lc == nil {
					t.Fatalf("%d %s, Set-Cookie %q", code, body, hdr.Values("Set-Cookie"))
				}
				return body, lc.Value
			}
			_, _, hdr := get(t, c, url+"/login")
			first := cookieSet(hdr, name)
			if first == nil {
				t.Fatalf("no %s in %q", name, hdr.Values("Set-Cookie"))
			}
			stuck, v := sticky(first.Value)
			other := map[string]string{"t0": "t1", "t1": "t0"}[stuck]

			setHealth(t, b, "tg", byName[stuck], StateUnhealthy)
			got, moved := sticky(v)
			if got != other || moved == v {
				t.Fatalf("sticky target unhealthy: went to %s with cookie %s (was %s), want %s and a new cookie", got, moved, v, other)
			}
			setHealth(t, b, "tg", byName[stuck], StateHealthy)
			for range 4 {
				if got, _ := sticky(moved); got != other {
					t.Fatalf("the session went back to %s once it recovered", got)
				}
			}

			// The new target is deregistered: the session moves back.
			for i, tg := range snap.TargetGroups[0].Targets {
				if tg.Addr == byName[other] {
					snap.TargetGroups[0].Targets[i].Draining = true
					snap.TargetGroups[0].Targets[i].DrainUntil = time.Now().Add(time.Hour)
				}
			}
			apply(t, b, snap)
			if got, back := sticky(moved); got != stuck || back == moved {
				t.Fatalf("sticky target draining: went to %s with cookie %s, want %s and a new cookie", got, back, stuck)
			}
		})
	}
}

// TestStickyForgedCookies: cookies the load balancer did not issue for
// this group are ignored: the request is balanced as usual and gets a
// cookie of its own.
func TestStickyForgedCookies(t *testing.T) {
	targets := stickyTargets(t, ProtocolHTTP, 2)
	b := newTestBalancer(t, Config{})
	apply(t, b, stickySnapshot(targets, ProtocolHTTP, Stickiness{Enabled: true}))
	other := newTestBalancer(t, Config{})
	var someAddr string
	for a := range targets {
		someAddr = a
	}
	url := baseURL(t, b, "lb", "l")
	c := newClient()
	for _, v := range []string{
		"",
		"garbage",
		someAddr,
		strings.Repeat("A", tokenLen),
		strings.Repeat("%", 5000),
		b.token("target", "another-group", someAddr),   // another group's target
		other.token("target", "tg", someAddr),          // issued under another key
		b.token("group", "tg"),                         // a group's token
		`"` + b.token("target", "tg", someAddr) + `x"`, // quoted, one character more
	} {
		got := spread(t, c, url, 4, "Cookie", "AWSALB="+v)
		if len(got) != 2 {
			t.Errorf("AWSALB=%.40s: %v, want round robin over both targets", v, got)
		}
		_, _, hdr := get(t, c, url, "Cookie", "AWSALB="+v)
		if lc := cookieSet(hdr, "AWSALB"); lc == nil || lc.Value == v {
			t.Errorf("AWSALB=%.40s: no new cookie: %q", v, hdr.Values("Set-Cookie"))
		}
	}
}

// TestStickyAppCookie: with app_cookie stickiness the load balancer sets
// AWSALBAPP-0 only once the target sets the application cookie; requests
// carrying both cookies then stick, and each response renews AWSALBAPP-0,
// until the session's duration passes without one, or the client drops
// the application cookie. A tampered AWSALBAPP-0 is ignored.
func TestStickyAppCookie(t *testing.T) {
	clock := newFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	targets := stickyTargets(t, ProtocolHTTP, 3)
	b := newTestBalancer(t, clock.config())
	apply(t, b, stickySnapshot(targets, ProtocolHTTP, Stickiness{Enabled: true, Type: StickinessAppCookie, CookieName: "SESSION", Duration: time.Minute}))
	url := baseURL(t, b, "lb", "l")
	c := newClient()

	// No application cookie, no load balancer cookie.
	for range 3 {
		_, _, hdr := get(t, c, url+"/")
		if sc := hdr.Values("Set-Cookie"); len(sc) != 1 || !strings.HasPrefix(sc[0], "own=") {
			t.Fatalf("Set-Cookie %q before the application set its cookie", sc)
		}
	}
	_, stuck, hdr := get(t, c, url+"/login")
	sc := hdr.Values("Set-Cookie")
	app := cookieSet(hdr, "AWSALBAPP-0")
	if len(sc) != 3 || !strings.HasPrefix(sc[0], "own=") || !strings.HasPrefix(sc[1], "SESSION=") || app == nil {
		t.Fatalf("Set-Cookie %q: want the target's two cookies, then AWSALBAPP-0", sc)
	}
	if !app.Expires.Equal(clock.expires(7*24*time.Hour)) || app.Path != "/" || app.Secure || app.SameSite != 0 {
		t.Errorf("AWSALBAPP-0: %s, want Expires in 7 days and Path=/", rawCookieSet(hdr, "AWSALBAPP-0"))
	}
	session := "SESSION=" + stuck + "; AWSALBAPP-0="

	// The session sticks; every response renews it.
	v := app.Value
	for range 10 {
		clock.add(40 * time.Second) // within the minute since the last response
		code, body, hdr := get(t, c, url+"/", "Cookie", session+v)
		renewed := cookieSet(hdr, "AWSALBAPP-0")
		if code != 200 || body != stuck || renewed == nil {
			t.Fatalf("in session: %d %s %q, want %s and a renewed AWSALBAPP-0", code, body, hdr.Values("Set-Cookie"), stuck)
		}
		v = renewed.Value
	}

	// Without the application cookie, no session.
	if got := spread(t, c, url+"/", 6, "Cookie", "AWSALBAPP-0="+v); len(got) != 3 {
		t.Errorf("AWSALBAPP-0 alone: %v, want round robin", got)
	}
	// A tampered value (one character of its MAC changed) is no session.
	tampered := []byte(v)
	tampered[len(tampered)-2] ^= 1
	if got := spread(t, c, url+"/", 6, "Cookie", session+string(tampered)); len(got) != 3 {
		t.Errorf("tampered AWSALBAPP-0: %v, want round robin", got)
	}
	// The duration passes without a response: the session is over, and
	// the load balancer sets no cookie until the application does.
	clock.add(61 * time.Second)
	if got := spread(t, c, url+"/", 6, "Cookie", session+v); len(got) != 3 {
		t.Errorf("expired session: %v, want round robin", got)
	}
	if _, _, hdr := get(t, c, url+"/", "Cookie", session+v); cookieSet(hdr, "AWSALBAPP-0") != nil {
		t.Errorf("expired session renewed: %q", hdr.Values("Set-Cookie"))
	}
}

// TestStickyAppCookieCORS: on an HTTPS listener, Chromium 80 and later get
// AWSALBAPP-0 with SameSite=None; Secure, other browsers without.
func TestStickyAppCookieCORS(t *testing.T) {
	targets := stickyTargets(t, ProtocolHTTP, 1)
	cert, pool := selfSigned(t, "app.example")
	b := newTestBalancer(t, Config{})
	snap := stickySnapshot(targets, ProtocolHTTP, Stickiness{Enabled: true, Type: StickinessAppCookie, CookieName: "SESSION"})
	l := &snap.LoadBalancers[0].Listeners[0]
	l.Protocol, l.Certificate = ProtocolHTTPS, cert
	apply(t, b, snap)
	c := &http.Client{Transport: &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "app.example"}}}
	for _, tc := range []struct {
		ua   string
		cors bool
	}{
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", true},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/79.0.3945.130 Safari/537.36", false},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15", false},
	} {
		_, _, hdr := get(t, c, baseURL(t, b, "lb", "l")+"/login", "User-Agent", tc.ua)
		app := cookieSet(hdr, "AWSALBAPP-0")
		if app == nil || app.Secure != tc.cors || (app.SameSite == http.SameSiteNoneMode) != tc.cors {
			t.Errorf("%.60s: %s, want SameSite=None; Secure %v", tc.ua, rawCookieSet(hdr, "AWSALBAPP-0"), tc.cors)
		}
	}
	c.CloseIdleConnections()
}

// TestGroupStickiness: a forward to two weighted groups with group
// stickiness names the group in AWSALBTG and AWSALBTGCORS; requests
// carrying either go to that group, even once its weight is 0, until it
// has no targets or leaves the forward.
func TestGroupStickiness(t *testing.T) {
	clock := newFakeClock(time.Date(2030, 3, 4, 5, 6, 7, 0, time.UTC))
	blue, green := newBackend(t, "blue"), newBackend(t, "green")
	b := newTestBalancer(t, clock.config())
	forward := func(blueWeight, greenWeight int) Snapshot {
		return Snapshot{
			LoadBalancers: []LoadBalancer{{ID: "lb", Address: "127.0.0.1", Listeners: []Listener{{ID: "l", Protocol: ProtocolHTTP,
				Rules: []Rule{{IsDefault: true, Action: Action{Type: ActionForward, GroupStickiness: 10 * time.Minute,
					Forward: []WeightedGroup{{TargetGroupID: "blue", Weight: blueWeight}, {TargetGroupID: "green", Weight: greenWeight}}}}}}}}},
			TargetGroups: []TargetGroup{
				{ID: "blue", HealthCheck: HealthCheck{Disabled: true}, Targets: targetsOf(blue.addr())},
				{ID: "green", HealthCheck: HealthCheck{Disabled: true}, Targets: targetsOf(green.addr())},
			},
		}
	}
	apply(t, b, forward(1, 1))
	url := baseURL(t, b, "lb", "l")
	c := newClient()

	if got := spread(t, c, url, 40); len(got) != 2 {
		t.Fatalf("without the cookie: %v, want both groups", got)
	}
	_, first, hdr := get(t, c, url)
	tg, cors := cookieSet(hdr, "AWSALBTG"), cookieSet(hdr, "AWSALBTGCORS")
	if tg == nil || cors == nil || cookieSet(hdr, "AWSALB") != nil {
		t.Fatalf("Set-Cookie %q: want AWSALBTG and AWSALBTGCORS only", hdr.Values("Set-Cookie"))
	}
	want := clock.expires(10 * time.Minute)
	if !tg.Expires.Equal(want) || tg.Path != "/" || tg.Secure || strings.Contains(tg.Value, first) {
		t.Errorf("AWSALBTG: %s, want an opaque value, Expires %v, Path=/", rawCookieSet(hdr, "AWSALBTG"), want)
	}
	if cors.Value != tg.Value || !cors.Expires.Equal(want) || !cors.Secure || cors.SameSite != http.SameSiteNoneMode {
		t.Errorf("AWSALBTGCORS: %s", rawCookieSet(hdr, "AWSALBTGCORS"))
	}
	for _, cookie := range []string{"AWSALBTG=" + tg.Value, "AWSALBTGCORS=" + tg.Value} {
		if got := spread(t, c, url, 20, "Cookie", cookie); got[first] != 20 {
			t.Errorf("Cookie %s: %v, want all on %s", cookie, got, first)
		}
	}
	// Stickiness takes precedence over the weights.
	if first == "blue" {
		apply(t, b, forward(0, 1))
	} else {
		apply(t, b, forward(1, 0))
	}
	if got := spread(t, c, url, 10, "Cookie", "AWSALBTG="+tg.Value); got[first] != 10 {
		t.Errorf("weight 0: %v, want all still on %s", got, first)
	}
	// The group at weight 0 loses its targets (blue/green cut over): its
	// clients go where the weights send them, not to a 503.
	emptied := forward(1, 0)
	if first == "blue" {
		emptied = forward(0, 1)
		emptied.TargetGroups[0].Targets = nil
	} else {
		emptied.TargetGroups[1].Targets = nil
	}
	apply(t, b, emptied)
	other := map[string]string{"blue": "green", "green": "blue"}[first]
	if got := spread(t, c, url, 10, "Cookie", "AWSALBTG="+tg.Value); got[other] != 10 {
		t.Errorf("stuck group without targets: %v, want all on %s", got, other)
	}
	// A group no longer in the forward: the weights decide.
	snap := forward(1, 1)
	rule := &snap.LoadBalancers[0].Listeners[0].Rules[0]
	if first == "blue" {
		rule.Action.Forward[0].TargetGroupID = "green"
		rule.Action.Forward = rule.Action.Forward[:1]
	} else {
		rule.Action.Forward = rule.Action.Forward[:1]
	}
	rule.Action.Forward = append(rule.Action.Forward, WeightedGroup{TargetGroupID: "spare", Weight: 1})
	snap.TargetGroups = append(snap.TargetGroups, TargetGroup{ID: "spare", HealthCheck: HealthCheck{Disabled: true}, Targets: targetsOf(newBackend(t, "spare").addr())})
	apply(t, b, snap)
	if got := spread(t, c, url, 10, "Cookie", "AWSALBTG="+tg.Value); got[first] != 0 {
		t.Errorf("group left the forward: %v, want none on %s", got, first)
	}
}

// TestStickinessOff: without stickiness the load balancer adds no cookie
// and ignores stickiness cookies; a forward to a single group with group
// stickiness sets none either.
func TestStickinessOff(t *testing.T) {
	targets := stickyTargets(t, ProtocolHTTP, 2)
	b := newTestBalancer(t, Config{})
	snap := stickySnapshot(targets, ProtocolHTTP, Stickiness{Type: StickinessLBCookie, Duration: time.Hour}) // not enabled
	snap.LoadBalancers[0].Listeners[0].Rules[0].Action.GroupStickiness = time.Hour
	apply(t, b, snap)
	url := baseURL(t, b, "lb", "l")
	c := newClient()
	for range 4 {
		_, _, hdr := get(t, c, url, "Cookie", "AWSALB=x; AWSALBTG=y")
		if sc := hdr.Values("Set-Cookie"); len(sc) != 1 || !strings.HasPrefix(sc[0], "own=") {
			t.Fatalf("Set-Cookie %q, want only the target's", sc)
		}
	}
	// Turned on, then off again: the cookie it issued no longer sticks.
	snap.TargetGroups[0].Stickiness.Enabled = true
	apply(t, b, snap)
	_, _, hdr := get(t, c, url)
	lc := cookieSet(hdr, "AWSALB")
	if lc == nil {
		t.Fatalf("stickiness on: Set-Cookie %q", hdr.Values("Set-Cookie"))
	}
	snap.TargetGroups[0].Stickiness.Enabled = false
	apply(t, b, snap)
	if got := spread(t, c, url, 4, "Cookie", "AWSALB="+lc.Value); len(got) != 2 {
		t.Errorf("stickiness off: %v, want round robin", got)
	}
}

// TestStickinessKey: cookies stick on any balancer with the same key (a
// restarted one), and on no other.
func TestStickinessKey(t *testing.T) {
	targets := stickyTargets(t, ProtocolHTTP, 3)
	snap := stickySnapshot(targets, ProtocolHTTP, Stickiness{Enabled: true})
	key := []byte("0123456789abcdef0123456789abcdef")
	first := newTestBalancer(t, Config{StickinessKey: key})
	apply(t, first, snap)
	c := newClient()
	_, stuck, hdr := get(t, c, baseURL(t, first, "lb", "l"))
	lc := cookieSet(hdr, "AWSALB")
	if lc == nil {
		t.Fatalf("Set-Cookie %q", hdr.Values("Set-Cookie"))
	}
	_ = first.Close()

	for _, tc := range []struct {
		key   []byte
		stick bool
	}{{key, true}, {[]byte("another key"), false}, {nil, false}} {
		b := newTestBalancer(t, Config{StickinessKey: tc.key})
		apply(t, b, snap)
		got := spread(t, c, baseURL(t, b, "lb", "l"), 6, "Cookie", "AWSALB="+lc.Value)
		if tc.stick && got[stuck] != 6 || !tc.stick && len(got) != 3 {
			t.Errorf("key %q: %v, sticky %v", tc.key, got, tc.stick)
		}
		_ = b.Close()
	}
}

// TestStickinessInvalid: stickiness ALB would refuse is refused, and the
// group or listener keeps its previous configuration.
func TestStickinessInvalid(t *testing.T) {
	be := newBackend(t, "a")
	for _, tc := range []struct {
		name  string
		st    Stickiness
		group time.Duration
	}{
		{"unknown type", Stickiness{Enabled: true, Type: "source_ip"}, 0},
		{"app_cookie without a name", Stickiness{Enabled: true, Type: StickinessAppCookie}, 0},
		{"reserved application cookie", Stickiness{Enabled: true, Type: StickinessAppCookie, CookieName: "AWSALBAPP-1"}, 0},
		{"duration over 7 days", Stickiness{Enabled: true, Duration: 8 * 24 * time.Hour}, 0},
		{"duration under a second", Stickiness{Enabled: true, Duration: time.Millisecond}, 0},
		{"group stickiness negative", Stickiness{}, -time.Second},
		{"group stickiness over 7 days", Stickiness{}, 8 * 24 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newTestBalancer(t, Config{})
			snap := oneListener(targetsOf(be.addr())...)
			snap.TargetGroups[0].Stickiness = tc.st
			snap.LoadBalancers[0].Listeners[0].Rules[0].Action.GroupStickiness = tc.group
			if err := b.Apply(context.Background(), snap); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("Apply: %v, want invalid", err)
			}
		})
	}
}

func TestChromium80(t *testing.T) {
	for ua, want := range map[string]bool{
		"":                            false,
		"curl/8.5.0":                  false,
		"Mozilla/5.0 Chrome/80.0.1":   true,
		"Mozilla/5.0 Chrome/79.9":     false,
		"Mozilla/5.0 Chromium/112.0":  true,
		"Mozilla/5.0 Chrome/":         false,
		"Mozilla/5.0 Chrome/99999999": true,
		"Mozilla/5.0 Edg/120 Chrome/120.0.0.0 Safari/537.36": true,
	} {
		if got := chromium80([]string{ua}); got != want {
			t.Errorf("chromium80(%q) = %v", ua, got)
		}
	}
}

func TestCookieValue(t *testing.T) {
	fields := []string{"a=1; AWSALB=tok ;b=\"q\"", "AWSALBTG=g"}
	for name, want := range map[string]string{"a": "1", "AWSALB": "tok", "b": "q", "AWSALBTG": "g"} {
		if v, ok := cookieValue(fields, name); !ok || v != want {
			t.Errorf("cookieValue(%s) = %q %v, want %q", name, v, ok, want)
		}
	}
	if _, ok := cookieValue(fields, "AWSALBCORS"); ok {
		t.Error("found a cookie that is not there")
	}
	if _, ok := cookieValue(fields, "awsalb"); ok {
		t.Error("cookie names are case-sensitive")
	}
}

// TestStickyCookiesCached: the responses of one second share their
// Set-Cookie values; a response with no cookie of its target's costs no
// allocation for them.
func TestStickyCookiesCached(t *testing.T) {
	b := newTestBalancer(t, Config{})
	snap := oneListener(targetsOf("10.0.0.1:80")...)
	snap.TargetGroups[0].Stickiness = Stickiness{Enabled: true}
	apply(t, b, snap)
	g := b.groups["tg"]
	af := &affinity{now: time.Unix(1_900_000_000, 0), st: g.conf.Load().sticky, t: g.targets[0]}
	h := http.Header{}
	af.setCookies(h)
	want := h["Set-Cookie"]
	if allocs := testing.AllocsPerRun(100, func() {
		delete(h, "Set-Cookie")
		af.setCookies(h)
	}); allocs != 0 || &h["Set-Cookie"][0] != &want[0] {
		t.Errorf("%v allocations per response, values shared %v", allocs, &h["Set-Cookie"][0] == &want[0])
	}
}

// TestStickyAcrossGroups: a browser moving between rules that forward to
// two sticky groups keeps its target in each, with one AWSALB (or
// AWSALBAPP-0) cookie holding an entry per group.
func TestStickyAcrossGroups(t *testing.T) {
	for _, st := range []Stickiness{
		{Enabled: true, Type: StickinessLBCookie, Duration: time.Hour},
		{Enabled: true, Type: StickinessAppCookie, CookieName: "SESSION", Duration: time.Hour},
	} {
		t.Run(st.Type, func(t *testing.T) {
			group := func(id string) TargetGroup {
				var addrs []string
				for a := range stickyTargets(t, ProtocolHTTP, 2) {
					addrs = append(addrs, a)
				}
				return TargetGroup{ID: id, HealthCheck: HealthCheck{Disabled: true}, Targets: targetsOf(addrs...), Stickiness: st}
			}
			b := newTestBalancer(t, Config{})
			apply(t, b, Snapshot{
				LoadBalancers: []LoadBalancer{{ID: "lb", Address: "127.0.0.1", Listeners: []Listener{{ID: "l", Protocol: ProtocolHTTP, Rules: []Rule{
					{Priority: 1, Conditions: []Condition{{Field: FieldPathPattern, Values: []string{"/api/*"}}}, Action: forwardTo("api")},
					{IsDefault: true, Action: forwardTo("web")},
				}}}}},
				TargetGroups: []TargetGroup{group("api"), group("web")},
			})
			url := baseURL(t, b, "lb", "l")
			jar, err := cookiejar.New(nil)
			if err != nil {
				t.Fatal(err)
			}
			c := newClient()
			c.Jar = jar
			// The application cookie's session starts at /login.
			_, api, _ := get(t, c, url+"/api/login")
			_, web, _ := get(t, c, url+"/login")
			for i := range 6 {
				if _, got, _ := get(t, c, url+"/api/x"); got != api {
					t.Fatalf("request %d to the api group went to %s, want %s (cookies %v)", i, got, api, jar.Cookies(mustParse(t, url)))
				}
				if _, got, _ := get(t, c, url+"/x"); got != web {
					t.Fatalf("request %d to the web group went to %s, want %s (cookies %v)", i, got, web, jar.Cookies(mustParse(t, url)))
				}
			}
		})
	}
}

func mustParse(t *testing.T, raw string) *neturl.URL {
	t.Helper()
	u, err := neturl.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestEntries splits AWSALB-style values into a group's entry and the
// others, bounded, and rejects values of the wrong shape.
func TestEntries(t *testing.T) {
	a, b, c := "AAAAAAAA"+strings.Repeat("a", 4), "BBBBBBBB"+strings.Repeat("b", 4), "CCCCCCCC"+strings.Repeat("c", 4)
	for _, tc := range []struct {
		v, mine, others string
	}{
		{a, a, ""},
		{b + a + c, a, b + c},
		{b + c, "", b + c},
		{a + a, a, ""},
		{a + "x", "", ""},
		{strings.Repeat(b, maxEntries+1), "", ""},
		{strings.Repeat(b, maxEntries-1) + a, a, strings.Repeat(b, maxEntries-1)},
	} {
		mine, others := entries(tc.v, 12, "AAAAAAAA")
		if mine != tc.mine || others != tc.others {
			t.Errorf("entries(%q) = %q, %q; want %q, %q", tc.v, mine, others, tc.mine, tc.others)
		}
	}
}
