package lb

import (
	"cmp"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/errdefs"
)

// routes is the compiled, immutable routing of one listener. A listener
// holds the current one behind an atomic pointer; Apply builds a new one
// and swaps it in.
type routes struct {
	lb       *lbSettings
	listener string
	// scheme is "http" or "https"; port is the listener's bound port.
	scheme string
	port   string
	rules  []rule
	// fallback handles requests no rule matched (the default rule), or
	// nil: 503.
	fallback *action
	metrics  *listenerMetrics
	// protoHeader and portHeader are the X-Forwarded-Proto and
	// X-Forwarded-Port values, shared by every request.
	protoHeader, portHeader []string
}

// lbSettings are the load balancer attributes its listeners apply.
type lbSettings struct {
	id          string
	address     string
	idleTimeout time.Duration
	http2       bool
	dropInvalid bool
	xff         string
	xffPort     bool
}

type rule struct {
	id     string
	conds  []cond
	action action
}

// match returns the action for r.
func (rt *routes) match(r *http.Request) *action {
	q := request{r: r}
	for i := range rt.rules {
		ru := &rt.rules[i]
		if q.matchAll(ru.conds) {
			return &ru.action
		}
	}
	return rt.fallback
}

type condField uint8

const (
	condPath condField = iota
	condHost
	condHeader
	condMethod
	condQuery
	condSource
)

// cond is a compiled Condition.
type cond struct {
	field    condField
	globs    []glob
	regexps  []*regexp.Regexp
	header   string // canonical header name
	methods  []string
	prefixes []netip.Prefix
	query    []queryPattern
}

type queryPattern struct {
	key   *glob // nil: any key
	value glob
}

// request is the per-request state of rule matching: the values some
// conditions derive from the request, computed once when first needed.
type request struct {
	r       *http.Request
	host    string
	hostOK  bool
	src     netip.Addr
	srcOK   bool
	srcDone bool
}

func (q *request) matchAll(conds []cond) bool {
	for i := range conds {
		if !q.matchCond(&conds[i]) {
			return false
		}
	}
	return true
}

func (q *request) matchCond(c *cond) bool {
	switch c.field {
	case condPath:
		return matchValue(c, q.r.URL.Path)
	case condHost:
		if !q.hostOK {
			q.host, q.hostOK = stripPort(q.r.Host), true
		}
		return matchValue(c, q.host)
	case condHeader:
		for _, v := range q.r.Header[c.header] {
			if matchValue(c, v) {
				return true
			}
		}
		return false
	case condMethod:
		return slices.Contains(c.methods, q.r.Method)
	case condQuery:
		return matchQuery(c.query, q.r.URL.RawQuery)
	case condSource:
		if !q.srcDone {
			q.srcDone = true
			if ap, err := netip.ParseAddrPort(q.r.RemoteAddr); err == nil {
				q.src, q.srcOK = ap.Addr().Unmap(), true
			}
		}
		if !q.srcOK {
			return false
		}
		for _, p := range c.prefixes {
			if p.Contains(q.src) {
				return true
			}
		}
		return false
	}
	return false
}

func matchValue(c *cond, v string) bool {
	for i := range c.globs {
		if c.globs[i].match(v) {
			return true
		}
	}
	for _, re := range c.regexps {
		if re.MatchString(v) {
			return true
		}
	}
	return false
}

// matchQuery reports whether any parameter of the raw query string matches
// any of the patterns. Keys and values are percent-decoded only when they
// hold an escape.
func matchQuery(pats []queryPattern, raw string) bool {
	for raw != "" {
		var seg string
		seg, raw, _ = strings.Cut(raw, "&")
		if seg == "" {
			continue
		}
		k, v, _ := strings.Cut(seg, "=")
		k, v = unescapeQuery(k), unescapeQuery(v)
		for i := range pats {
			p := &pats[i]
			if (p.key == nil || p.key.match(k)) && p.value.match(v) {
				return true
			}
		}
	}
	return false
}

func unescapeQuery(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// stripPort returns host without a trailing :port (and without the
// brackets of an IPv6 literal).
func stripPort(host string) string {
	if strings.HasPrefix(host, "[") {
		if i := strings.IndexByte(host, ']'); i > 0 {
			return host[1:i]
		}
		return host
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.IndexByte(host, ':') == i {
		return host[:i]
	}
	return host
}

// invalid wraps errdefs.ErrInvalidArgument with a description.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
}

// compileConditions compiles a rule's conditions.
func compileConditions(cs []Condition) ([]cond, error) {
	out := make([]cond, 0, len(cs))
	for _, c := range cs {
		var cc cond
		switch c.Field {
		case FieldPathPattern, FieldHostHeader, FieldHTTPHeader:
			fold := c.Field != FieldPathPattern
			switch c.Field {
			case FieldPathPattern:
				cc.field = condPath
			case FieldHostHeader:
				cc.field = condHost
			default:
				cc.field = condHeader
				if c.HeaderName == "" {
					return nil, invalid("http-header condition without a header name")
				}
				cc.header = http.CanonicalHeaderKey(c.HeaderName)
				if cc.header == "Host" {
					return nil, invalid("http-header condition on Host: use a host-header condition")
				}
			}
			for _, v := range c.Values {
				cc.globs = append(cc.globs, compileGlob(v, fold, false))
			}
			for _, v := range c.RegexValues {
				re, err := regexp.Compile(v)
				if err != nil {
					return nil, invalid("%s condition: regular expression %q: %v", c.Field, v, err)
				}
				cc.regexps = append(cc.regexps, re)
			}
			if len(cc.globs)+len(cc.regexps) == 0 {
				return nil, invalid("%s condition without values", c.Field)
			}
		case FieldHTTPRequestMethod:
			cc.field = condMethod
			cc.methods = slices.Clone(c.Values)
			if len(cc.methods) == 0 {
				return nil, invalid("http-request-method condition without values")
			}
		case FieldQueryString:
			cc.field = condQuery
			for _, p := range c.Query {
				qp := queryPattern{value: compileGlob(p.Value, true, true)}
				if p.Key != "" {
					k := compileGlob(p.Key, true, true)
					qp.key = &k
				}
				cc.query = append(cc.query, qp)
			}
			if len(cc.query) == 0 {
				return nil, invalid("query-string condition without key/value pairs")
			}
		case FieldSourceIP:
			cc.field = condSource
			for _, v := range c.Values {
				p, err := netip.ParsePrefix(v)
				if err != nil {
					return nil, invalid("source-ip condition: %q is not a CIDR block", v)
				}
				cc.prefixes = append(cc.prefixes, p.Masked())
			}
			if len(cc.prefixes) == 0 {
				return nil, invalid("source-ip condition without values")
			}
		default:
			return nil, invalid("unknown condition field %q", c.Field)
		}
		out = append(out, cc)
	}
	return out, nil
}

// sortRules orders rules by priority, the default rule last; it reports
// the default rule separately and rejects duplicate priorities or default
// rules.
func sortRules(rs []Rule) (ordered []Rule, def *Rule, err error) {
	for i := range rs {
		if rs[i].IsDefault {
			if def != nil {
				return nil, nil, invalid("two default rules")
			}
			def = &rs[i]
			continue
		}
		ordered = append(ordered, rs[i])
	}
	slices.SortStableFunc(ordered, func(a, b Rule) int { return cmp.Compare(a.Priority, b.Priority) })
	for i := 1; i < len(ordered); i++ {
		if ordered[i].Priority == ordered[i-1].Priority {
			return nil, nil, invalid("rules %q and %q share priority %d", ordered[i-1].ID, ordered[i].ID, ordered[i].Priority)
		}
	}
	return ordered, def, nil
}

func ruleName(r *Rule) string {
	if r.ID != "" {
		return strconv.Quote(r.ID)
	}
	if r.IsDefault {
		return "default"
	}
	return "with priority " + strconv.Itoa(r.Priority)
}
