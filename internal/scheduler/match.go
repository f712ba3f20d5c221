package scheduler

import (
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode/utf8"
)

// matcher matches a whole value against a regular expression, with fast
// paths for the shapes placement constraints mostly use: a literal, and a
// literal before or after ".*" (t2.* and the like).
type matcher struct {
	kind matchKind
	lit  string
	re   *regexp.Regexp // anchored; used when the fast path does not apply
}

type matchKind uint8

const (
	matchRegexp   matchKind = iota
	matchExact              // lit
	matchPrefix             // lit.*
	matchSuffix             // .*lit
	matchContains           // .*lit.*
)

func newMatcher(pattern string) (*matcher, error) {
	// Compile the pattern alone first: wrapped in ^(?:...)$ straight away,
	// "a)|(b" would compile, and not anchor both alternatives.
	if _, err := regexp.Compile(pattern); err != nil {
		return nil, err
	}
	re, err := regexp.Compile(`^(?:` + pattern + `)$`)
	if err != nil {
		return nil, err
	}
	m := &matcher{re: re}
	parsed, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return m, nil
	}
	parsed = parsed.Simplify()
	lit := func(r *syntax.Regexp) bool {
		return r.Op == syntax.OpLiteral && r.Flags&syntax.FoldCase == 0
	}
	// any is ".*" as Perl flags parse it: any character but a newline.
	anyStar := func(r *syntax.Regexp) bool {
		return r.Op == syntax.OpStar && len(r.Sub) == 1 && r.Sub[0].Op == syntax.OpAnyCharNotNL
	}
	subs := parsed.Sub
	switch {
	case lit(parsed):
		m.kind, m.lit = matchExact, string(parsed.Rune)
	case parsed.Op == syntax.OpConcat && len(subs) == 2 && lit(subs[0]) && anyStar(subs[1]):
		m.kind, m.lit = matchPrefix, string(subs[0].Rune)
	case parsed.Op == syntax.OpConcat && len(subs) == 2 && anyStar(subs[0]) && lit(subs[1]):
		m.kind, m.lit = matchSuffix, string(subs[1].Rune)
	case parsed.Op == syntax.OpConcat && len(subs) == 3 && anyStar(subs[0]) && lit(subs[1]) && anyStar(subs[2]):
		m.kind, m.lit = matchContains, string(subs[1].Rune)
	}
	return m, nil
}

// MatchString reports whether the whole of s matches.
func (m *matcher) MatchString(s string) bool {
	// A newline is not matched by ".", so leave values with one to the
	// regular expression; so too values that are not valid UTF-8, where
	// the literal's runes and the value's bytes may not line up.
	if m.kind == matchRegexp || strings.IndexByte(s, '\n') >= 0 || !utf8.ValidString(s) {
		return m.re.MatchString(s)
	}
	switch m.kind {
	case matchExact:
		return s == m.lit
	case matchPrefix:
		return strings.HasPrefix(s, m.lit)
	case matchSuffix:
		return strings.HasSuffix(s, m.lit)
	}
	return strings.Contains(s, m.lit)
}
