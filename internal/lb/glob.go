package lb

import (
	"strings"
	"unicode/utf8"
)

// glob is a compiled ALB wildcard pattern: * matches zero or more
// characters, ? exactly one. Matching is iterative with one backtracking
// point (the last *), so it is linear in practice and never allocates.
type glob struct {
	// pat is the pattern with escapes removed (lower-cased when fold).
	pat string
	// wild marks the bytes of pat that are wildcards; nil when pat has
	// none (an escaped \* or \? is a literal).
	wild []bool
	// fold compares ASCII letters case-insensitively.
	fold bool
	// kind selects a fast path.
	kind globKind
}

type globKind uint8

const (
	globGeneral globKind = iota
	globExact            // no wildcard
	globPrefix           // literal followed by one trailing *
	globAny              // "*"
)

// compileGlob compiles pattern. With escapes, \* and \? stand for the
// literal characters (query-string conditions); otherwise a backslash is
// an ordinary character.
func compileGlob(pattern string, fold, escapes bool) glob {
	var b strings.Builder
	var wild []bool
	hasWild := false
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		isWild := false
		switch {
		case escapes && c == '\\' && i+1 < len(pattern) && (pattern[i+1] == '*' || pattern[i+1] == '?'):
			i++
			c = pattern[i]
		case c == '*' || c == '?':
			isWild = true
			hasWild = true
		}
		if fold {
			c = lowerASCII(c)
		}
		b.WriteByte(c)
		wild = append(wild, isWild)
	}
	g := glob{pat: b.String(), fold: fold}
	if !hasWild {
		g.kind = globExact
		return g
	}
	g.wild = wild
	n := len(g.pat)
	switch {
	case n == 1 && g.wild[0] && g.pat[0] == '*':
		g.kind = globAny
	case g.wild[n-1] && g.pat[n-1] == '*' && !anyWild(wild[:n-1]):
		g.kind = globPrefix
	}
	return g
}

func anyWild(w []bool) bool {
	for _, x := range w {
		if x {
			return true
		}
	}
	return false
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// equalFoldASCII reports whether s equals lower (already lower-case),
// ignoring ASCII case.
func equalFoldASCII(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if lowerASCII(s[i]) != lower[i] {
			return false
		}
	}
	return true
}

func (g *glob) match(s string) bool {
	switch g.kind {
	case globAny:
		return true
	case globExact:
		if g.fold {
			return equalFoldASCII(s, g.pat)
		}
		return s == g.pat
	case globPrefix:
		p := g.pat[:len(g.pat)-1]
		if len(s) < len(p) {
			return false
		}
		if g.fold {
			return equalFoldASCII(s[:len(p)], p)
		}
		return s[:len(p)] == p
	}
	p := g.pat
	pi, si := 0, 0
	starP, starS := -1, 0
	for si < len(s) {
		if pi < len(p) {
			switch {
			case g.wild[pi] && p[pi] == '*':
				starP, starS = pi, si
				pi++
				continue
			case g.wild[pi]: // ?: one character, which may be several bytes
				_, size := utf8.DecodeRuneInString(s[si:])
				si += size
				pi++
				continue
			case p[pi] == s[si] || (g.fold && lowerASCII(s[si]) == p[pi]):
				pi++
				si++
				continue
			}
		}
		if starP < 0 {
			return false
		}
		// Let the last * absorb one more byte and retry after it.
		pi = starP + 1
		starS++
		si = starS
	}
	for pi < len(p) && g.wild[pi] && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
