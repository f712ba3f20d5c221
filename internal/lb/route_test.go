package lb

import (
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/berthdev/berth/internal/errdefs"
)

// fixed is a fixed-response action answering name.
func fixed(name string) Action {
	return Action{Type: ActionFixedResponse, Fixed: &FixedResponse{StatusCode: 200, Body: name}}
}

// compileTest compiles rules for a listener of an HTTP load balancer.
func compileTest(t *testing.T, rules ...Rule) *routes {
	t.Helper()
	b := newTestBalancer(t, Config{})
	set := &lbSettings{id: "lb", idleTimeout: defaultIdleTimeout, xff: XFFAppend}
	rt, err := b.compileRoutes(set, &Listener{ID: "l", Protocol: ProtocolHTTP, Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func matched(rt *routes, method, target string, hdr ...string) string {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			r.Host = hdr[i+1]
			continue
		}
		if hdr[i] == "RemoteAddr" {
			r.RemoteAddr = hdr[i+1]
			continue
		}
		r.Header.Add(hdr[i], hdr[i+1])
	}
	a := rt.match(r)
	if a == nil {
		return "<none>"
	}
	return a.fixed.Body
}

func on(field string, values ...string) Condition { return Condition{Field: field, Values: values} }

func TestConditions(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cond   Condition
		method string
		target string
		hdr    []string
		want   bool
	}{
		// path-pattern: case-sensitive, wildcards, path only.
		{"path exact", on(FieldPathPattern, "/img"), "GET", "/img", nil, true},
		{"path exact mismatch", on(FieldPathPattern, "/img"), "GET", "/img/", nil, false},
		{"path star", on(FieldPathPattern, "/img/*"), "GET", "/img/a/b.png", nil, true},
		{"path star empty", on(FieldPathPattern, "/img/*"), "GET", "/img/", nil, true},
		{"path case-sensitive", on(FieldPathPattern, "/img/*"), "GET", "/IMG/a", nil, false},
		{"path question", on(FieldPathPattern, "/v?/x"), "GET", "/v1/x", nil, true},
		{"path question needs one", on(FieldPathPattern, "/v?/x"), "GET", "/v/x", nil, false},
		{"path inner star", on(FieldPathPattern, "/api/*/items"), "GET", "/api/v2/beta/items", nil, true},
		{"path inner star mismatch", on(FieldPathPattern, "/api/*/items"), "GET", "/api/v2/item", nil, false},
		{"path ignores query", on(FieldPathPattern, "/a"), "GET", "/a?b=c", nil, true},
		{"path decoded", on(FieldPathPattern, "/a b"), "GET", "/a%20b", nil, true},
		{"path values ORed", on(FieldPathPattern, "/x", "/y/*"), "GET", "/y/z", nil, true},
		{"path star star", on(FieldPathPattern, "*.png"), "GET", "/a/b.png", nil, true},
		{"path star backtracks", on(FieldPathPattern, "/*a*b"), "GET", "/xxaxxaxb", nil, true},
		{"path regex", Condition{Field: FieldPathPattern, RegexValues: []string{`^/u/[0-9]+$`}}, "GET", "/u/42", nil, true},
		{"path regex mismatch", Condition{Field: FieldPathPattern, RegexValues: []string{`^/u/[0-9]+$`}}, "GET", "/u/x", nil, false},

		// host-header: case-insensitive, port ignored.
		{"host", on(FieldHostHeader, "example.com"), "GET", "/", []string{"Host", "Example.COM"}, true},
		{"host port", on(FieldHostHeader, "example.com"), "GET", "/", []string{"Host", "example.com:8080"}, true},
		{"host wildcard", on(FieldHostHeader, "*.example.com"), "GET", "/", []string{"Host", "api.EXAMPLE.com"}, true},
		{"host wildcard apex", on(FieldHostHeader, "*.example.com"), "GET", "/", []string{"Host", "example.com"}, false},
		{"host question", on(FieldHostHeader, "api?.example.com"), "GET", "/", []string{"Host", "api2.example.com"}, true},
		{"host other", on(FieldHostHeader, "example.com"), "GET", "/", []string{"Host", "example.org"}, false},
		{"host ipv6", on(FieldHostHeader, "::1"), "GET", "/", []string{"Host", "[::1]:80"}, true},

		// http-header: name case-insensitive, values case-insensitive with wildcards.
		{"header", Condition{Field: FieldHTTPHeader, HeaderName: "user-agent", Values: []string{"*Mobile*"}}, "GET", "/", []string{"User-Agent", "x mobile y"}, true},
		{"header absent", Condition{Field: FieldHTTPHeader, HeaderName: "X-Env", Values: []string{"*"}}, "GET", "/", nil, false},
		{"header any line", Condition{Field: FieldHTTPHeader, HeaderName: "X-Env", Values: []string{"beta"}}, "GET", "/", []string{"X-Env", "prod", "X-Env", "BETA"}, true},
		{"header mismatch", Condition{Field: FieldHTTPHeader, HeaderName: "X-Env", Values: []string{"beta"}}, "GET", "/", []string{"X-Env", "betamax"}, false},

		// http-request-method: exact.
		{"method", on(FieldHTTPRequestMethod, "GET", "HEAD"), "HEAD", "/", nil, true},
		{"method case-sensitive", on(FieldHTTPRequestMethod, "get"), "GET", "/", nil, false},
		{"method other", on(FieldHTTPRequestMethod, "POST"), "GET", "/", nil, false},

		// query-string: key/value pairs, case-insensitive, wildcards, escapes.
		{"query pair", Condition{Field: FieldQueryString, Query: []QueryPair{{Key: "version", Value: "v1"}}}, "GET", "/?a=b&version=V1", nil, true},
		{"query value only", Condition{Field: FieldQueryString, Query: []QueryPair{{Value: "beta"}}}, "GET", "/?channel=beta", nil, true},
		{"query wildcard", Condition{Field: FieldQueryString, Query: []QueryPair{{Key: "v*", Value: "1?"}}}, "GET", "/?ver=12", nil, true},
		{"query decoded", Condition{Field: FieldQueryString, Query: []QueryPair{{Key: "q", Value: "a b"}}}, "GET", "/?q=a%20b", nil, true},
		{"query plus", Condition{Field: FieldQueryString, Query: []QueryPair{{Key: "q", Value: "a b"}}}, "GET", "/?q=a+b", nil, true},
		{"query escaped star", Condition{Field: FieldQueryString, Query: []QueryPair{{Key: "q", Value: `\*`}}}, "GET", "/?q=*", nil, true},
		{"query escaped star literal", Condition{Field: FieldQueryString, Query: []QueryPair{{Key: "q", Value: `\*`}}}, "GET", "/?q=x", nil, false},
		{"query key mismatch", Condition{Field: FieldQueryString, Query: []QueryPair{{Key: "version", Value: "v1"}}}, "GET", "/?v=v1", nil, false},
		{"query empty", Condition{Field: FieldQueryString, Query: []QueryPair{{Value: "*"}}}, "GET", "/", nil, false},
		{"query pairs ORed", Condition{Field: FieldQueryString, Query: []QueryPair{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}}}, "GET", "/?b=2", nil, true},

		// source-ip: CIDRs against the connection's address.
		{"source v4", on(FieldSourceIP, "192.0.2.0/24"), "GET", "/", []string{"RemoteAddr", "192.0.2.77:5555"}, true},
		{"source v4 out", on(FieldSourceIP, "192.0.2.0/24"), "GET", "/", []string{"RemoteAddr", "198.51.100.1:5555"}, false},
		{"source ignores XFF", on(FieldSourceIP, "192.0.2.0/24"), "GET", "/", []string{"RemoteAddr", "198.51.100.1:5555", "X-Forwarded-For", "192.0.2.1"}, false},
		{"source v6", on(FieldSourceIP, "2001:db8::/32"), "GET", "/", []string{"RemoteAddr", "[2001:db8::1]:443"}, true},
		{"source mapped v4", on(FieldSourceIP, "10.0.0.0/8"), "GET", "/", []string{"RemoteAddr", "[::ffff:10.1.2.3]:443"}, true},
		{"source host", on(FieldSourceIP, "127.0.0.1/32"), "GET", "/", []string{"RemoteAddr", "127.0.0.1:1"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := compileTest(t, Rule{ID: "r", Priority: 1, Conditions: []Condition{tc.cond}, Action: fixed("r")},
				Rule{IsDefault: true, Action: fixed("default")})
			got := matched(rt, tc.method, tc.target, tc.hdr...) == "r"
			if got != tc.want {
				t.Errorf("matched = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRulePriorities(t *testing.T) {
	rt := compileTest(t,
		Rule{IsDefault: true, Action: fixed("default")},
		Rule{ID: "api-beta", Priority: 5, Conditions: []Condition{
			on(FieldPathPattern, "/api/*"),
			{Field: FieldHTTPHeader, HeaderName: "X-Channel", Values: []string{"beta"}},
		}, Action: fixed("api-beta")},
		Rule{ID: "api", Priority: 10, Conditions: []Condition{on(FieldPathPattern, "/api/*")}, Action: fixed("api")},
		Rule{ID: "catch-api-late", Priority: 20, Conditions: []Condition{on(FieldPathPattern, "/api/v1")}, Action: fixed("never")},
		Rule{ID: "host", Priority: 3, Conditions: []Condition{on(FieldHostHeader, "admin.example.com")}, Action: fixed("admin")},
	)
	for _, tc := range []struct {
		target string
		hdr    []string
		want   string
	}{
		{"/api/v1", nil, "api"},
		{"/api/v1", []string{"X-Channel", "Beta"}, "api-beta"},
		{"/api/v1", []string{"Host", "admin.example.com"}, "admin"},
		{"/other", nil, "default"},
	} {
		if got := matched(rt, "GET", tc.target, tc.hdr...); got != tc.want {
			t.Errorf("%s %v: %s, want %s", tc.target, tc.hdr, got, tc.want)
		}
	}
	noDefault := compileTest(t, Rule{Priority: 1, Conditions: []Condition{on(FieldPathPattern, "/a")}, Action: fixed("a")})
	if got := matched(noDefault, "GET", "/b"); got != "<none>" {
		t.Errorf("no default rule: %s", got)
	}
}

func TestInvalidRules(t *testing.T) {
	b := newTestBalancer(t, Config{})
	set := &lbSettings{id: "lb", idleTimeout: defaultIdleTimeout, xff: XFFAppend}
	for _, tc := range []struct {
		name string
		l    Listener
	}{
		{"protocol", Listener{Protocol: "TCP"}},
		{"https without certificate", Listener{Protocol: ProtocolHTTPS}},
		{"two defaults", Listener{Protocol: ProtocolHTTP, Rules: []Rule{{IsDefault: true, Action: fixed("a")}, {IsDefault: true, Action: fixed("b")}}}},
		{"same priority", Listener{Protocol: ProtocolHTTP, Rules: []Rule{{Priority: 1, Action: fixed("a")}, {Priority: 1, Action: fixed("b")}}}},
		{"unknown field", Listener{Protocol: ProtocolHTTP, Rules: []Rule{{Priority: 1, Conditions: []Condition{on("cookie", "x")}, Action: fixed("a")}}}},
		{"bad cidr", Listener{Protocol: ProtocolHTTP, Rules: []Rule{{Priority: 1, Conditions: []Condition{on(FieldSourceIP, "10.0.0.1")}, Action: fixed("a")}}}},
		{"bad regex", Listener{Protocol: ProtocolHTTP, Rules: []Rule{{Priority: 1, Conditions: []Condition{{Field: FieldPathPattern, RegexValues: []string{"("}}}, Action: fixed("a")}}}},
		{"no values", Listener{Protocol: ProtocolHTTP, Rules: []Rule{{Priority: 1, Conditions: []Condition{on(FieldPathPattern)}, Action: fixed("a")}}}},
		{"unknown group", Listener{Protocol: ProtocolHTTP, Rules: []Rule{{IsDefault: true, Action: forwardTo("nope")}}}},
		{"bad redirect", Listener{Protocol: ProtocolHTTP, Rules: []Rule{{IsDefault: true, Action: Action{Type: ActionRedirect, Redirect: &Redirect{Path: "no-slash"}}}}}},
		{"bad status", Listener{Protocol: ProtocolHTTP, Rules: []Rule{{IsDefault: true, Action: Action{Type: ActionFixedResponse, Fixed: &FixedResponse{StatusCode: 99}}}}}},
		{"bad action", Listener{Protocol: ProtocolHTTP, Rules: []Rule{{IsDefault: true, Action: Action{Type: "authenticate-oidc"}}}}},
	} {
		if _, err := b.compileRoutes(set, &tc.l); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", tc.name, err)
		}
	}
}

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		pat, s string
		fold   bool
		want   bool
	}{
		{"*", "", false, true},
		{"a*", "abc", false, true},
		{"a*", "bac", false, false},
		{"*c", "abc", false, true},
		{"a?c", "abc", false, true},
		{"a?c", "ac", false, false},
		{"a?c", "aéc", false, true}, // ? is one character, not one byte
		{"ABC", "abc", true, true},
		{"a*b*c", "axxbyyc", false, true},
		{"a*b*c", "axxbyy", false, false},
		{"**", "x", false, true},
		{"", "", false, true},
		{"", "x", false, false},
	} {
		g := compileGlob(tc.pat, tc.fold, false)
		if got := g.match(tc.s); got != tc.want {
			t.Errorf("%q ~ %q (fold %v) = %v, want %v", tc.pat, tc.s, tc.fold, got, tc.want)
		}
	}
}
