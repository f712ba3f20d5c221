package scheduler

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/errdefs"
)

// MaxExpressionLength is the longest memberOf expression ECS accepts
// (PlacementConstraint.expression: "a maximum length of 2000 characters").
const MaxExpressionLength = 2000

// ExpressionError is why an expression does not parse. It wraps
// errdefs.ErrInvalidArgument, so the API layer answers it as ECS's
// InvalidParameterException with Error() as the message.
type ExpressionError struct {
	// Expression is the text that failed to parse.
	Expression string
	// Offset is the byte offset in Expression where parsing stopped.
	Offset int
	// Problem says what was wrong there, in lower case without a final period.
	Problem string
}

// Error returns the message the API sends to the client.
func (e *ExpressionError) Error() string {
	expr := strconv.Quote(e.Expression)
	if len(e.Expression) > 200 {
		expr = strconv.Quote(e.Expression[:200]) + "..."
	}
	return fmt.Sprintf("Invalid placement constraint expression %s: %s at offset %d.", expr, e.Problem, e.Offset)
}

// Unwrap returns errdefs.ErrInvalidArgument.
func (e *ExpressionError) Unwrap() error { return errdefs.ErrInvalidArgument }

// ParseExpression parses a cluster query language expression, the argument
// of a memberOf placement constraint (and of ListContainerInstances'
// filter). The grammar, with keywords and subjects matched without regard
// to case:
//
//	expr       = and { ("||" | "or") and }
//	and        = unary { ("&&" | "and") unary }
//	unary      = ("!" | "not") unary | "(" expr ")" | comparison
//	comparison = subject operator [ argument ]
//	subject    = "attribute:" name | "ec2InstanceId" | "agentConnected" | "agentVersion"
//	           | "registeredAt" | "runningTasksCount" | "task:group"
//	operator   = "==" | "equals" | "!=" | "not_equals" | ">" | "greater_than"
//	           | ">=" | "greater_than_equal" | "<" | "less_than" | "<=" | "less_than_equal"
//	           | "exists" | "!exists" | "not_exists" | "in" | "!in" | "not_in" | "not in"
//	           | "=~" | "matches" | "!~" | "not_matches"
//	argument   = value | "[" value { "," value } "]"       (a list for in and not_in only)
//	value      = 'text' | "text" | bare                     (no escapes inside quotes)
//
// A bare value runs up to white space, one of ( ) [ ] , ' " or && or ||, so
// values with those must be quoted. Each subject accepts the operators the
// ECS documentation lists for it, and arguments are checked for their
// subject: runningTasksCount takes integers, registeredAt the dates
// 2018-06-18T22:28:28+00:00, 2018-06-18T22:28:28Z, 2018-06-18T22:28:28 and
// 2018-06-18 (UTC unless an offset is given), agentVersion dotted numbers,
// agentConnected true or false, and =~ / !~ a regular expression in Go's RE2
// syntax that must match the whole value (ECS documents Java's regular
// expressions; the common subset behaves the same).
func ParseExpression(s string) (*Expression, error) {
	if len(s) > MaxExpressionLength {
		return nil, &ExpressionError{Expression: s, Offset: MaxExpressionLength,
			Problem: fmt.Sprintf("expression is longer than %d characters", MaxExpressionLength)}
	}
	p := &parser{s: s}
	p.space()
	if p.eof() {
		p.fail("expression is empty")
		return nil, p.err
	}
	root := p.or()
	if p.err == nil {
		p.space()
		if !p.eof() {
			p.fail(fmt.Sprintf("unexpected %s", p.near()))
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	return &Expression{root: root, taskGroup: p.taskGroup}, nil
}

// parser is a recursive-descent parser over the expression text. The first
// error stops it: every method returns at once when p.err is set.
type parser struct {
	s         string
	i         int
	err       *ExpressionError
	taskGroup bool // a task:group comparison was seen
}

func (p *parser) eof() bool { return p.i >= len(p.s) }

func (p *parser) fail(problem string) exprNode {
	if p.err == nil {
		p.err = &ExpressionError{Expression: p.s, Offset: p.i, Problem: problem}
	}
	return nil
}

// near describes the text at the current position for error messages.
func (p *parser) near() string {
	if p.eof() {
		return "end of expression"
	}
	rest := p.s[p.i:]
	if n := strings.IndexAny(rest, " \t\r\n\v\f"); n > 0 {
		rest = rest[:n]
	}
	if len(rest) > 20 {
		rest = rest[:20] + "..."
	}
	return strconv.Quote(rest)
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func (p *parser) space() {
	for p.i < len(p.s) && isSpace(p.s[p.i]) {
		p.i++
	}
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// keyword consumes word (case-insensitively) if it stands alone at the
// current position, that is, is not the start of a longer word.
func (p *parser) keyword(word string) bool {
	end := p.i + len(word)
	if end > len(p.s) || !strings.EqualFold(p.s[p.i:end], word) {
		return false
	}
	if end < len(p.s) && (isWordByte(p.s[end]) || isNameByte(p.s[end])) {
		return false
	}
	p.i = end
	return true
}

func (p *parser) symbol(sym string) bool {
	if strings.HasPrefix(p.s[p.i:], sym) {
		p.i += len(sym)
		return true
	}
	return false
}

func (p *parser) or() exprNode {
	first := p.and()
	var kids []exprNode
	for p.err == nil {
		p.space()
		if !p.symbol("||") && !p.keyword("or") {
			break
		}
		if kids == nil {
			kids = appendFlat(kids, first, precOr)
		}
		kids = appendFlat(kids, p.and(), precOr)
	}
	if p.err != nil {
		return nil
	}
	if kids == nil {
		return first
	}
	return &orNode{kids: kids}
}

func (p *parser) and() exprNode {
	first := p.unary()
	var kids []exprNode
	for p.err == nil {
		p.space()
		if !p.symbol("&&") && !p.keyword("and") {
			break
		}
		if kids == nil {
			kids = appendFlat(kids, first, precAnd)
		}
		kids = appendFlat(kids, p.unary(), precAnd)
	}
	if p.err != nil {
		return nil
	}
	if kids == nil {
		return first
	}
	return &andNode{kids: kids}
}

// appendFlat appends n to kids, splicing in the children of a node of the
// same kind so that a or (b or c) and (a or b) or c have one canonical tree.
func appendFlat(kids []exprNode, n exprNode, prec int) []exprNode {
	switch n := n.(type) {
	case *orNode:
		if prec == precOr {
			return append(kids, n.kids...)
		}
	case *andNode:
		if prec == precAnd {
			return append(kids, n.kids...)
		}
	}
	return append(kids, n)
}

func (p *parser) unary() exprNode {
	p.space()
	switch {
	case p.eof():
		return p.fail("expected a comparison, found end of expression")
	case p.s[p.i] == '!':
		p.i++
		return p.negate()
	case p.keyword("not"):
		return p.negate()
	case p.s[p.i] == '(':
		p.i++
		n := p.or()
		if p.err != nil {
			return nil
		}
		p.space()
		if !p.symbol(")") {
			return p.fail(fmt.Sprintf("expected ')', found %s", p.near()))
		}
		return n
	}
	return p.comparison()
}

// negate parses the operand of ! or not.
func (p *parser) negate() exprNode {
	kid := p.unary()
	if p.err != nil {
		return nil
	}
	if n, ok := kid.(*notNode); ok { // not not x is x
		return n.kid
	}
	return &notNode{kid: kid}
}

// isNameByte reports whether c may appear in a subject or attribute name:
// letters, digits, hyphens, underscores, forward and back slashes, periods
// (the characters ECS allows in attribute names) and the colon of
// "attribute:" and "task:group".
func isNameByte(c byte) bool {
	return isWordByte(c) || c == '-' || c == '.' || c == '/' || c == '\\' || c == ':'
}

func (p *parser) comparison() exprNode {
	start := p.i
	for p.i < len(p.s) && isNameByte(p.s[p.i]) {
		p.i++
	}
	word := p.s[start:p.i]
	c := &cmpNode{}
	switch {
	case word == "":
		p.i = start
		return p.fail(fmt.Sprintf("expected a subject, found %s", p.near()))
	case len(word) > len("attribute:") && strings.EqualFold(word[:len("attribute:")], "attribute:"):
		c.subj, c.name = subjAttribute, word[len("attribute:"):]
		if strings.ContainsRune(c.name, ':') {
			p.i = start
			return p.fail(fmt.Sprintf("invalid attribute name %q", c.name))
		}
		if len(c.name) > 128 {
			p.i = start
			return p.fail("attribute name is longer than 128 characters")
		}
	default:
		c.subj = subjectNamed(word)
		if c.subj == 0 {
			p.i = start
			return p.fail(fmt.Sprintf("unknown subject %q", word))
		}
		if c.subj == subjTaskGroup {
			p.taskGroup = true
		}
	}
	p.space()
	opAt := p.i
	c.op = p.operator()
	if p.err != nil {
		return nil
	}
	if !subjectOps[c.subj].has(c.op) {
		p.i = opAt
		return p.fail(fmt.Sprintf("operator %s is not valid for %s", opSymbols[c.op], c.subject()))
	}
	switch c.op {
	case opExists, opNotExists:
		// no argument
	case opIn, opNotIn:
		p.space()
		if !p.symbol("[") {
			return p.fail(fmt.Sprintf("expected '[' to start the argument list of %s, found %s", opSymbols[c.op], p.near()))
		}
		for {
			p.space()
			c.args = append(c.args, p.value())
			if p.err != nil {
				return nil
			}
			p.space()
			if p.symbol("]") {
				break
			}
			if !p.symbol(",") {
				return p.fail(fmt.Sprintf("expected ',' or ']' in argument list, found %s", p.near()))
			}
		}
	default:
		p.space()
		if !p.eof() && p.s[p.i] == '[' {
			return p.fail(fmt.Sprintf("operator %s takes one value, not a list", opSymbols[c.op]))
		}
		c.args = []string{p.value()}
	}
	if p.err != nil {
		return nil
	}
	argAt := p.i
	if problem := c.compile(); problem != "" {
		p.i = argAt
		return p.fail(problem)
	}
	return c
}

// operator reads a comparison operator.
func (p *parser) operator() opKind {
	for _, s := range [...]struct {
		sym string
		op  opKind
	}{{"==", opEq}, {"!=", opNe}, {">=", opGe}, {"<=", opLe}, {">", opGt}, {"<", opLt}, {"=~", opMatches}, {"!~", opNotMatches}} {
		if p.symbol(s.sym) {
			return s.op
		}
	}
	if p.symbol("!") {
		switch {
		case p.keyword("in"):
			return opNotIn
		case p.keyword("exists"):
			return opNotExists
		}
		p.i--
		return p.failOp()
	}
	for _, w := range [...]struct {
		word string
		op   opKind
	}{
		{"equals", opEq}, {"not_equals", opNe}, {"greater_than_equal", opGe}, {"greater_than", opGt},
		{"less_than_equal", opLe}, {"less_than", opLt}, {"exists", opExists}, {"not_exists", opNotExists},
		{"in", opIn}, {"not_in", opNotIn}, {"matches", opMatches}, {"not_matches", opNotMatches},
	} {
		if p.keyword(w.word) {
			return w.op
		}
	}
	if save := p.i; p.keyword("not") {
		p.space()
		if p.keyword("in") {
			return opNotIn
		}
		p.i = save
	}
	return p.failOp()
}

func (p *parser) failOp() opKind {
	p.fail(fmt.Sprintf("expected an operator, found %s", p.near()))
	return 0
}

// value reads one argument: quoted with ' or " (no escapes), or bare.
func (p *parser) value() string {
	if p.eof() {
		p.fail("expected a value, found end of expression")
		return ""
	}
	if q := p.s[p.i]; q == '\'' || q == '"' {
		end := strings.IndexByte(p.s[p.i+1:], q)
		if end < 0 {
			p.fail("unterminated quoted value")
			return ""
		}
		v := p.s[p.i+1 : p.i+1+end]
		p.i += end + 2
		return v
	}
	start := p.i
	p.i += bareLen(p.s[p.i:])
	if p.i == start {
		p.fail(fmt.Sprintf("expected a value, found %s", p.near()))
		return ""
	}
	return p.s[start:p.i]
}

// bareLen returns the length of the bare value at the start of s: up to
// white space, one of ( ) [ ] , ' " or the operator && or ||.
func bareLen(s string) int {
	for i := 0; i < len(s); i++ {
		if c := s[i]; isValueStop(c) || (c == '&' || c == '|') && i+1 < len(s) && s[i+1] == c {
			return i
		}
	}
	return len(s)
}

func isValueStop(c byte) bool {
	switch c {
	case '(', ')', '[', ']', ',', '\'', '"':
		return true
	}
	return isSpace(c)
}

// Dates registeredAt accepts, as the ECS documentation lists them.
var dateLayouts = [...]string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02"}

// compile checks the arguments against the subject and operator and
// prepares what evaluation needs. It returns a problem, or "".
func (c *cmpNode) compile() string {
	switch c.op {
	case opMatches, opNotMatches:
		// Compile the pattern alone first: wrapped in ^(?:...)$ straight
		// away, "a)|(b" would compile, and not anchor both alternatives.
		m, err := newMatcher(c.args[0])
		if err != nil {
			return fmt.Sprintf("invalid regular expression %q", c.args[0])
		}
		c.re = m
		return ""
	}
	switch c.subj {
	case subjAgentConnected:
		for i, a := range c.args {
			switch strings.ToLower(a) {
			case "true", "false":
				c.args[i] = strings.ToLower(a)
			default:
				return fmt.Sprintf("agentConnected takes true or false, not %q", a)
			}
		}
	case subjRunningTasksCount:
		n, err := strconv.ParseInt(c.args[0], 10, 64)
		if err != nil {
			return fmt.Sprintf("runningTasksCount takes an integer, not %q", c.args[0])
		}
		c.num = float64(n)
	case subjRegisteredAt:
		for _, layout := range dateLayouts {
			if t, err := time.Parse(layout, c.args[0]); err == nil {
				c.when = t
				return ""
			}
		}
		return fmt.Sprintf("registeredAt takes a date such as 2018-06-18T22:28:28Z or 2018-06-18, not %q", c.args[0])
	case subjAgentVersion:
		if !validVersion(c.args[0]) {
			return fmt.Sprintf("agentVersion takes a version such as 1.14.5, not %q", c.args[0])
		}
	case subjAttribute:
		if c.op >= opGt && c.op <= opLe {
			if f, err := strconv.ParseFloat(c.args[0], 64); err == nil {
				c.num, c.numeric = f, true
			}
		}
	}
	if (c.op == opIn || c.op == opNotIn) && len(c.args) > 8 {
		c.set = make(map[string]struct{}, len(c.args))
		for _, a := range c.args {
			c.set[a] = struct{}{}
		}
	}
	return ""
}

func validVersion(v string) bool {
	if v == "" {
		return false
	}
	for _, part := range strings.Split(v, ".") {
		if part == "" {
			return false
		}
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return false
			}
		}
	}
	return true
}
