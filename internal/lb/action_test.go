package lb

import (
	"testing"
)

func TestRedirectAndFixedResponse(t *testing.T) {
	b := newTestBalancer(t, Config{})
	apply(t, b, Snapshot{LoadBalancers: []LoadBalancer{{
		ID: "lb", Address: "127.0.0.1",
		Listeners: []Listener{{ID: "l", Protocol: ProtocolHTTP, Rules: []Rule{
			{Priority: 1, Conditions: []Condition{on(FieldPathPattern, "/https/*")},
				Action: Action{Type: ActionRedirect, Redirect: &Redirect{Protocol: "HTTPS", Port: "443", StatusCode: 301}}},
			{Priority: 2, Conditions: []Condition{on(FieldPathPattern, "/moved/*")},
				Action: Action{Type: ActionRedirect, Redirect: &Redirect{Host: "new.#{host}", Path: "/v2/#{path}", Query: "#{query}&from=old"}}},
			{Priority: 3, Conditions: []Condition{on(FieldPathPattern, "/plain")},
				Action: Action{Type: ActionRedirect, Redirect: &Redirect{Path: "/elsewhere", Query: ""}}},
			{Priority: 4, Conditions: []Condition{on(FieldPathPattern, "/json")},
				Action: Action{Type: ActionFixedResponse, Fixed: &FixedResponse{StatusCode: 418, ContentType: "application/json", Body: `{"tea":true}`}}},
			{IsDefault: true, Action: Action{Type: ActionFixedResponse, Fixed: &FixedResponse{StatusCode: 404, Body: "nothing here"}}},
		}}},
	}}})
	base := baseURL(t, b, "lb", "l")
	_, port, _ := splitURL(base)
	c := newClient()
	for _, tc := range []struct {
		path       string
		host       string
		code       int
		location   string
		body, ctyp string
	}{
		{path: "/https/a/b?x=1", host: "shop.example.com", code: 301, location: "https://shop.example.com:443/https/a/b?x=1"},
		{path: "/moved/p?q=1", host: "example.com:" + port, code: 302, location: "http://new.example.com:" + port + "/v2/moved/p?q=1&from=old"},
		{path: "/plain?drop=me", host: "example.com", code: 302, location: "http://example.com:" + port + "/elsewhere?drop=me"},
		{path: "/json", code: 418, body: `{"tea":true}`, ctyp: "application/json"},
		{path: "/else", code: 404, body: "nothing here", ctyp: "text/plain"},
	} {
		host := tc.host
		if host == "" {
			host = "x"
		}
		code, body, hdr := get(t, c, base+tc.path, "Host", host)
		if code != tc.code || hdr.Get("Location") != tc.location || (tc.body != "" && body != tc.body) || (tc.ctyp != "" && hdr.Get("Content-Type") != tc.ctyp) {
			t.Errorf("%s: %d %q %q %v", tc.path, code, hdr.Get("Location"), body, hdr)
		}
	}
}

func splitURL(u string) (host, port string, ok bool) {
	hp := u[len("http://"):]
	for i := len(hp) - 1; i >= 0; i-- {
		if hp[i] == ':' {
			return hp[:i], hp[i+1:], true
		}
	}
	return hp, "", false
}
