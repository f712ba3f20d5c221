package registry

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestAuthChallenge(t *testing.T) {
	e := newEnv(t)
	e.createRepo("team/app", "")
	host := e.srv.Listener.Addr().String()
	for _, tc := range []struct{ path, challenge string }{
		{"/v2/", `Bearer realm="http://` + host + `/v2/token",service="` + host + `"`},
		{"/v2/team/app/manifests/v1", `Bearer realm="http://` + host + `/v2/token",service="` + host + `",scope="repository:team/app:pull,push"`},
		{"/v2/nosuch/route/x", `Bearer realm="http://` + host + `/v2/token",service="` + host + `"`},
	} {
		resp := e.do("GET", tc.path, nil, "Authorization", "")
		expect(t, resp, http.StatusUnauthorized, "UNAUTHORIZED")
		if got := resp.Header.Get("WWW-Authenticate"); got != tc.challenge {
			t.Errorf("%s: WWW-Authenticate %q, want %q", tc.path, got, tc.challenge)
		}
	}
}

func TestAuthCredentials(t *testing.T) {
	e := newEnv(t)
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	forged := []byte(e.token)
	forged[len(forged)-3] ^= 1 // flip a bit of the signature
	other, err := Open(Config{Store: e.store, Dir: t.TempDir(), Host: "h", TokenKey: []byte(strings.Repeat("k", 32)), Now: e.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	foreign, _ := other.MintToken("someone")
	for _, tc := range []struct {
		name, auth string
		status     int
	}{
		{"basic", basic("AWS", e.token), http.StatusOK},
		{"bearer", "Bearer " + e.token, http.StatusOK},
		{"wrong user", basic("admin", e.token), http.StatusUnauthorized},
		{"bad signature", basic("AWS", string(forged)), http.StatusUnauthorized},
		{"other key", basic("AWS", foreign), http.StatusUnauthorized},
		{"garbage", "Bearer !!!", http.StatusUnauthorized},
		{"truncated", "Bearer " + e.token[:20], http.StatusUnauthorized},
		{"unknown scheme", "Digest abc", http.StatusUnauthorized},
	} {
		resp := e.do("GET", "/v2/", nil, "Authorization", tc.auth)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.status)
		}
	}
	// Expiry.
	p, err := e.r.VerifyToken(e.token)
	if err != nil || p != "arn:aws:iam::000000000000:root" {
		t.Fatalf("VerifyToken = %q, %v", p, err)
	}
	e.clk.Advance(12*time.Hour + time.Second)
	if _, err := e.r.VerifyToken(e.token); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("expired token: %v", err)
	}
	b := expect(t, e.do("GET", "/v2/", nil), http.StatusUnauthorized, "UNAUTHORIZED")
	if !strings.Contains(errorMessage(t, b), "expired") {
		t.Errorf("message %s", b)
	}
}

func TestTokenEndpoint(t *testing.T) {
	e := newEnv(t)
	// Anonymous: refused.
	expect(t, e.do("GET", "/v2/token?service=x&scope=repository:app:pull", nil, "Authorization", ""), http.StatusUnauthorized, "UNAUTHORIZED")
	expect(t, e.do("GET", "/v2/token", nil, "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("AWS:nope"))), http.StatusUnauthorized, "UNAUTHORIZED")

	var tr tokenResponse
	resp := e.do("GET", "/v2/token?service="+url.QueryEscape(e.r.Host())+"&scope=repository:app:pull,push", nil)
	if err := json.Unmarshal(expect(t, resp, http.StatusOK, ""), &tr); err != nil {
		t.Fatal(err)
	}
	if tr.Token == "" || tr.AccessToken != tr.Token || tr.ExpiresIn <= 0 || tr.ExpiresIn > int64((12*time.Hour).Seconds()) || tr.IssuedAt == "" {
		t.Fatalf("token response %+v", tr)
	}
	expect(t, e.do("GET", "/v2/", nil, "Authorization", "Bearer "+tr.Token), http.StatusOK, "")

	// containerd's OAuth2 password grant.
	form := url.Values{"grant_type": {"password"}, "username": {"AWS"}, "password": {e.token}, "service": {e.r.Host()}}
	resp = e.do("POST", "/v2/token", strings.NewReader(form.Encode()), "Authorization", "", "Content-Type", "application/x-www-form-urlencoded")
	tr = tokenResponse{}
	json.Unmarshal(expect(t, resp, http.StatusOK, ""), &tr)
	expect(t, e.do("GET", "/v2/", nil, "Authorization", "Bearer "+tr.AccessToken), http.StatusOK, "")
	form.Set("username", "root")
	expect(t, e.do("POST", "/v2/token", strings.NewReader(form.Encode()), "Authorization", "", "Content-Type", "application/x-www-form-urlencoded"), http.StatusUnauthorized, "UNAUTHORIZED")
}

func TestBlobURL(t *testing.T) {
	e := newEnv(t)
	e.createRepo("team/app", "")
	d := e.pushBlob("team/app", []byte("downloadable"))
	u := e.r.BlobURL("team/app", d)
	if !strings.HasPrefix(u, "http://"+e.r.Host()+"/v2/team/app/blobs/"+d+"?") {
		t.Fatalf("BlobURL %q", u)
	}
	if got := expect(t, e.do("GET", u, nil, "Authorization", ""), http.StatusOK, ""); string(got) != "downloadable" {
		t.Errorf("body %q", got)
	}
	// The signature covers the repository and digest, and expires.
	other := e.pushBlob("team/app", []byte("other"))
	tampered := strings.Replace(u, d, other, 1)
	expect(t, e.do("GET", tampered, nil, "Authorization", ""), http.StatusUnauthorized, "UNAUTHORIZED")
	expect(t, e.do("PUT", u, nil, "Authorization", ""), http.StatusUnauthorized, "UNAUTHORIZED")
	e.clk.Advance(61 * time.Minute)
	expect(t, e.do("GET", u, nil, "Authorization", ""), http.StatusUnauthorized, "UNAUTHORIZED")
}
