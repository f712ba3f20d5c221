package lb

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// This file is sticky sessions (Stickiness, Action.GroupStickiness). A
// request's cookies are read before its target is picked and the load
// balancer's cookies are appended to the target's response headers, after
// the target's own Set-Cookie values, before they are written to the
// client. A forward without stickiness pays a zero check of its group
// stickiness and a nil check of its group's, and allocates nothing.
//
// Cookie values are opaque. A target is named by its token, the first 15
// bytes of HMAC-SHA256(StickinessKey, "target" 0 group ID 0 target ID) in
// base64url (20 characters), a group by the same of "group" 0 group ID; the
// set a group balances over maps tokens to targets, so a cookie is resolved
// with one map lookup. AWSALBAPP-0 adds when it was issued and a MAC (see
// appValue): an application session ends Duration after its last
// response, which the load balancer checks itself.
//
// One AWSALB (AWSALBAPP-0) value serves every group with lb_cookie
// (app_cookie) stickiness, as ALB's does: it is a run of entries of fixed
// length, one per group, each the group's tag (the start of its token)
// and its target's token (value). A response sets its group's entry first
// and keeps the others, up to maxEntries, so a client moving between
// rules that forward to different sticky groups stays on its target in
// each. The cookie's Expires is that of the group that set it last.

// Cookie names (ALB's).
const (
	cookieLB     = "AWSALB"
	cookieLBCORS = "AWSALBCORS"
	cookieApp    = "AWSALBAPP-0"
	cookieTG     = "AWSALBTG"
	cookieTGCORS = "AWSALBTGCORS"
)

const (
	// maxStickiness bounds every stickiness duration (ALB's 7 days).
	maxStickiness = 7 * 24 * time.Hour
	// appCookieLife is the lifetime of AWSALBAPP-0, which ALB fixes at 7
	// days; the session's own duration is checked by the load balancer.
	appCookieLife = 7 * 24 * time.Hour
	// tokenLen is the length of a token in its cookie.
	tokenLen = 20
	// appValueLen is the length of a target's AWSALBAPP-0 value: its
	// token, then 12 bytes (issued at, MAC) in base64url.
	appValueLen = tokenLen + 16
	// tagLen is the length of a group's tag, the start of its token, which
	// opens its entry in AWSALB and AWSALBAPP-0 values.
	tagLen = 8
	// lbEntryLen and appEntryLen are the lengths of a group's entry in
	// AWSALB and in AWSALBAPP-0 values: its tag, then its target's token
	// (lb) or value (app).
	lbEntryLen  = tagLen + tokenLen
	appEntryLen = tagLen + appValueLen
	// maxEntries bounds the groups one AWSALB or AWSALBAPP-0 value keeps.
	maxEntries = 8
)

// stickiness is a group's compiled Stickiness.
type stickiness struct {
	app      bool
	duration time.Duration
	cookie   string // the application cookie (app)
}

func compileStickiness(s Stickiness) (*stickiness, error) {
	if !s.Enabled {
		return nil, nil
	}
	out := &stickiness{duration: s.Duration}
	switch s.Type {
	case "", StickinessLBCookie:
	case StickinessAppCookie:
		if s.CookieName == "" {
			return nil, invalid("app_cookie stickiness without an application cookie name")
		}
		if strings.HasPrefix(s.CookieName, cookieLB) {
			return nil, invalid("application cookie %q: names starting with AWSALB are the load balancer's", s.CookieName)
		}
		out.app, out.cookie = true, s.CookieName
	default:
		return nil, invalid("stickiness type %q is not lb_cookie or app_cookie", s.Type)
	}
	if out.duration == 0 {
		out.duration = 24 * time.Hour
	}
	if out.duration < time.Second || out.duration > maxStickiness {
		return nil, invalid("stickiness duration %v is not 1 second to 7 days", s.Duration)
	}
	return out, nil
}

// token names a target or a group in cookies: the kind and the IDs,
// keyed by the balancer's StickinessKey.
func (b *Balancer) token(parts ...string) string {
	sum := b.mac(parts...)
	return base64.RawURLEncoding.EncodeToString(sum[:tokenLen*3/4])
}

// mac is HMAC-SHA256(StickinessKey, parts joined by 0 bytes).
func (b *Balancer) mac(parts ...string) []byte {
	h := hmac.New(sha256.New, b.cfg.StickinessKey)
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{0})
		}
		h.Write([]byte(p))
	}
	return h.Sum(nil)
}

// affinity is one forwarded request's stickiness: what its cookies asked
// for, and what the load balancer's cookies on its response must say. A
// forward without stickiness has none (nil).
type affinity struct {
	now time.Time
	// tg is the group a forward with group stickiness sent the request
	// to, and tgFor that stickiness's duration; nil without it.
	tg    *group
	tgFor time.Duration
	// st is the stickiness of the target's group (nil without it), t the
	// target the request went to.
	st *stickiness
	t  *target
	// session marks a request in an application session: its response
	// renews the session whether or not the target sets its cookie.
	session bool
	// cors adds SameSite=None; Secure to AWSALBAPP-0.
	cors bool
	// others are the entries of other groups in the request's AWSALB or
	// AWSALBAPP-0 value, for the response's to keep.
	others string
}

// stuckGroup returns the group of a forward with group stickiness that
// the request's AWSALBTG (or AWSALBTGCORS) cookie names, or nil.
func (a *action) stuckGroup(cookies []string) *weighted {
	v, ok := cookieValue(cookies, cookieTG)
	if !ok {
		v, ok = cookieValue(cookies, cookieTGCORS)
	}
	if !ok {
		return nil
	}
	for i := range a.groups {
		if a.groups[i].g.token == v {
			return &a.groups[i]
		}
	}
	return nil
}

// stuckTarget returns the target the request's cookies stick to in group
// g with stickiness st when it may receive requests, or nil; it records
// in af whether the request is in an application session and the other
// groups' entries.
func (af *affinity) stuckTarget(r *http.Request, rt *routes, g *group, st *stickiness) *target {
	cookies := r.Header["Cookie"]
	tag := g.token[:tagLen]
	if !st.app {
		v, ok := cookieValue(cookies, cookieLB)
		if !ok {
			v, ok = cookieValue(cookies, cookieLBCORS)
		}
		if !ok {
			return nil
		}
		var mine string
		mine, af.others = entries(v, lbEntryLen, tag)
		if mine == "" {
			return nil
		}
		return g.set.Load().sticky[mine[tagLen:]]
	}
	// ALB adds SameSite=None; Secure to AWSALBAPP-0 for Chromium 80 and
	// later. It is silent on HTTP listeners, where a browser refuses a
	// Secure cookie and the session would never start: Berth adds them on
	// HTTPS listeners only.
	af.cors = rt.scheme == "https" && chromium80(r.Header["User-Agent"])
	v, ok := cookieValue(cookies, cookieApp)
	if !ok {
		return nil
	}
	var mine string
	mine, af.others = entries(v, appEntryLen, tag)
	if _, ok := cookieValue(cookies, st.cookie); !ok {
		return nil
	}
	if mine == "" || !g.openApp(mine[tagLen:], af.now, st.duration) {
		return nil
	}
	// A session whose target can no longer receive requests moves to the
	// one the algorithm picks (ALB: the session is then stuck to the new
	// target, even if the old one comes back).
	af.session = true
	return g.set.Load().sticky[mine[tagLen:tagLen+tokenLen]]
}

// entries splits a cookie value made of entries of size characters into
// the one whose tag is tag (or "") and the others, at most maxEntries-1
// of them. A value that is not a run of such entries has none.
func entries(v string, size int, tag string) (mine, others string) {
	if len(v)%size != 0 || len(v) > maxEntries*size {
		return "", ""
	}
	var b strings.Builder
	for i := 0; i < len(v); i += size {
		e := v[i : i+size]
		switch {
		case e[:tagLen] == tag:
			if mine == "" {
				mine = e
			}
		case b.Len() < (maxEntries-1)*size:
			b.WriteString(e)
		}
	}
	return mine, b.String()
}

// setCookies appends the load balancer's Set-Cookie values to h, the
// target's response headers, after the target's own.
func (af *affinity) setCookies(h http.Header) {
	if st := af.st; st != nil {
		switch {
		case !st.app:
			addCookies(h, af.t.lbCookies(st.duration, af.now, af.others))
		case af.session || setsCookie(h["Set-Cookie"], st.cookie):
			addCookies(h, af.t.appCookie(af.now, af.cors, af.others))
		}
	}
	if af.tg != nil {
		addCookies(h, af.tg.tgCookies(af.tgFor, af.now))
	}
}

// addCookies appends Set-Cookie values to h. The values are shared (their
// capacity equals their length, so an append copies them).
func addCookies(h http.Header, values []string) {
	if old := h["Set-Cookie"]; len(old) > 0 {
		h["Set-Cookie"] = append(old, values...)
		return
	}
	h["Set-Cookie"] = values
}

// cookieBatch is the Set-Cookie values of a target or a group for the
// responses of one second (sec, Unix) and one duration: with
// second-resolution expiry, the responses of a second share them.
type cookieBatch struct {
	sec    int64
	d      time.Duration
	values []string
}

// batch returns the values cached in p for sec and d, or caches those
// build makes.
func batch(p *atomic.Pointer[cookieBatch], sec int64, d time.Duration, build func() []string) []string {
	if c := p.Load(); c != nil && c.sec == sec && c.d == d {
		return c.values
	}
	c := &cookieBatch{sec: sec, d: d, values: build()}
	p.Store(c)
	return c.values
}

// lbCookies are AWSALB and AWSALBCORS naming t for its group, then the
// entries of others, expiring after d. Without others they are cached.
func (t *target) lbCookies(d time.Duration, now time.Time, others string) []string {
	sec := now.Unix()
	build := func() []string {
		v := t.g.token[:tagLen] + t.token + others
		attrs := "; Expires=" + expires(sec, d) + "; Path=/"
		return []string{cookieLB + "=" + v + attrs, cookieLBCORS + "=" + v + attrs + "; SameSite=None; Secure"}
	}
	if others != "" {
		return build()
	}
	return batch(&t.cookies, sec, d, build)
}

// appCookie is AWSALBAPP-0 naming t for its group, issued now, then the
// entries of others: plain, or with SameSite=None; Secure when cors is
// set. Without others it is cached.
func (t *target) appCookie(now time.Time, cors bool, others string) []string {
	sec := now.Unix()
	build := func() []string {
		v := cookieApp + "=" + t.g.token[:tagLen] + t.g.appValue(t.token, sec) + others + "; Expires=" + expires(sec, appCookieLife) + "; Path=/"
		return []string{v, v + "; SameSite=None; Secure"}
	}
	var both []string
	if others != "" {
		both = build()
	} else {
		// A duration of 0 tells these apart from t's AWSALB cookies.
		both = batch(&t.cookies, sec, 0, build)
	}
	if cors {
		return both[1:2:2]
	}
	return both[0:1:1]
}

// tgCookies are AWSALBTG and AWSALBTGCORS naming g, expiring after d.
func (g *group) tgCookies(d time.Duration, now time.Time) []string {
	sec := now.Unix()
	return batch(&g.tgCookieBatch, sec, d, func() []string {
		attrs := "; Expires=" + expires(sec, d) + "; Path=/"
		return []string{cookieTG + "=" + g.token + attrs, cookieTGCORS + "=" + g.token + attrs + "; SameSite=None; Secure"}
	})
}

// expires is the Expires attribute of a cookie set at sec (Unix) that
// lasts d.
func expires(sec int64, d time.Duration) string {
	return time.Unix(sec, 0).Add(d).UTC().Format(http.TimeFormat)
}

// appValue is the AWSALBAPP-0 value naming the target of token, issued at
// sec: the token, then, in base64url, sec (4 bytes, big-endian) and a MAC
// of both under the group's seal. The MAC is the first 8 bytes of
// SHA-256(seal, token, sec): a keyed hash over a message of fixed length,
// which length extension cannot forge, computed in one block without
// allocating. The seal is the group's, so a session cookie of another
// group is no session here.
func (g *group) appValue(token string, sec int64) string {
	var tail [12]byte
	binary.BigEndian.PutUint32(tail[:4], uint32(sec))
	mac := g.appMAC(token, tail[:4])
	copy(tail[4:], mac[:8])
	return token + base64.RawURLEncoding.EncodeToString(tail[:])
}

// openApp reports whether v is an AWSALBAPP-0 value of g issued at most
// d before now.
func (g *group) openApp(v string, now time.Time, d time.Duration) bool {
	if len(v) != appValueLen {
		return false
	}
	var tail [12]byte
	var enc [appValueLen - tokenLen]byte
	copy(enc[:], v[tokenLen:])
	if n, err := base64.RawURLEncoding.Decode(tail[:], enc[:]); err != nil || n != len(tail) {
		return false
	}
	mac := g.appMAC(v[:tokenLen], tail[:4])
	if subtle.ConstantTimeCompare(mac[:8], tail[4:]) != 1 {
		return false
	}
	issued := int64(binary.BigEndian.Uint32(tail[:4]))
	return now.Unix()-issued <= int64(d/time.Second)
}

func (g *group) appMAC(token string, sec []byte) [sha256.Size]byte {
	var msg [len(g.seal) + tokenLen + 4]byte
	copy(msg[:], g.seal[:])
	copy(msg[len(g.seal):], token)
	copy(msg[len(g.seal)+tokenLen:], sec)
	return sha256.Sum256(msg[:])
}

// cookieValue returns the value of the cookie name in a request's Cookie
// header fields, without its double quotes.
func cookieValue(fields []string, name string) (string, bool) {
	for _, f := range fields {
		for f != "" {
			var pair string
			pair, f, _ = strings.Cut(f, ";")
			k, v, ok := strings.Cut(pair, "=")
			if ok && strings.TrimSpace(k) == name {
				v = strings.TrimSpace(v)
				if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
					v = v[1 : len(v)-1]
				}
				return v, true
			}
		}
	}
	return "", false
}

// setsCookie reports whether Set-Cookie values set the cookie name
// (whatever its value and attributes, a deletion included: ALB checks only
// the name).
func setsCookie(values []string, name string) bool {
	for _, v := range values {
		if k, _, ok := strings.Cut(v, "="); ok && strings.TrimSpace(k) == name {
			return true
		}
	}
	return false
}

// chromium80 reports whether a User-Agent is Chromium 80 or later, to
// which ALB sends AWSALBAPP-0 with SameSite=None; Secure for cross-origin
// requests (ALB user guide, Application-based stickiness).
func chromium80(ua []string) bool {
	if len(ua) == 0 {
		return false
	}
	_, v, ok := strings.Cut(ua[0], "Chrome/")
	if !ok {
		if _, v, ok = strings.Cut(ua[0], "Chromium/"); !ok {
			return false
		}
	}
	major := 0
	for i := 0; i < len(v) && isDigit(v[i]) && major < 1000; i++ {
		major = major*10 + int(v[i]-'0')
	}
	return major >= 80
}
