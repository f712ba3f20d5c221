package scheduler

import (
	"strconv"
	"strings"
	"time"
)

// Expression is a parsed cluster query language expression: parse it once
// with ParseExpression, then evaluate it against many instances. It is
// immutable and safe for concurrent use.
//
// A comparison is true when some value of its subject satisfies it. A
// subject has no value when the instance lacks it (an attribute that is not
// set, an empty EC2InstanceID, AgentVersion or RegisteredAt), one value, or,
// for task:group, one value per task on the instance. So
// "attribute:stack != prod" selects instances that have a stack attribute
// whose value is not prod, as the ECS documentation describes it, and
// "task:group != web" selects instances running some task outside group
// web; use not(task:group == web) for instances running no task of web.
type Expression struct {
	root      exprNode
	taskGroup bool
}

// Match reports whether the instance satisfies the expression. Task groups
// come from inst.Tasks.
func (e *Expression) Match(inst *Instance) bool {
	return e.root.eval(&view{in: inst})
}

// String returns the expression in canonical form: symbolic operators,
// single spaces, values quoted only when they must be, and parentheses only
// where precedence needs them (not(...) always has them). Parsing the
// result gives an expression with the same String.
func (e *Expression) String() string {
	var b strings.Builder
	e.root.write(&b, 0)
	return b.String()
}

// view is what an expression sees of an instance: the instance and the
// groups of the tasks a Snapshot has placed on it since it was taken.
type view struct {
	in     *Instance
	placed []string
}

type exprNode interface {
	eval(v *view) bool
	// write appends the canonical text, parenthesised if the node binds
	// less tightly than its parent.
	write(b *strings.Builder, parent int)
}

// Precedence, loosest first.
const (
	precOr = iota + 1
	precAnd
	precNot
)

type orNode struct{ kids []exprNode }

func (n *orNode) eval(v *view) bool {
	for _, k := range n.kids {
		if k.eval(v) {
			return true
		}
	}
	return false
}

func (n *orNode) write(b *strings.Builder, parent int) {
	writeJoined(b, n.kids, " or ", precOr, parent)
}

type andNode struct{ kids []exprNode }

func (n *andNode) eval(v *view) bool {
	for _, k := range n.kids {
		if !k.eval(v) {
			return false
		}
	}
	return true
}

func (n *andNode) write(b *strings.Builder, parent int) {
	writeJoined(b, n.kids, " and ", precAnd, parent)
}

func writeJoined(b *strings.Builder, kids []exprNode, sep string, prec, parent int) {
	if prec < parent {
		b.WriteByte('(')
	}
	for i, k := range kids {
		if i > 0 {
			b.WriteString(sep)
		}
		k.write(b, prec+1)
	}
	if prec < parent {
		b.WriteByte(')')
	}
}

type notNode struct{ kid exprNode }

func (n *notNode) eval(v *view) bool { return !n.kid.eval(v) }

func (n *notNode) write(b *strings.Builder, _ int) {
	b.WriteString("not(")
	n.kid.write(b, 0)
	b.WriteByte(')')
}

type subjectKind uint8

const (
	subjAttribute subjectKind = iota + 1
	subjEC2InstanceID
	subjAgentConnected
	subjAgentVersion
	subjRegisteredAt
	subjRunningTasksCount
	subjTaskGroup
)

var subjectNames = [...]string{
	subjEC2InstanceID:     "ec2InstanceId",
	subjAgentConnected:    "agentConnected",
	subjAgentVersion:      "agentVersion",
	subjRegisteredAt:      "registeredAt",
	subjRunningTasksCount: "runningTasksCount",
	subjTaskGroup:         "task:group",
}

func subjectNamed(word string) subjectKind {
	for k, name := range subjectNames {
		if name != "" && strings.EqualFold(word, name) {
			return subjectKind(k)
		}
	}
	return 0
}

type opKind uint8

const (
	opEq opKind = iota + 1
	opNe
	opGt
	opGe
	opLt
	opLe
	opExists
	opNotExists
	opIn
	opNotIn
	opMatches
	opNotMatches
)

var opSymbols = [...]string{
	opEq: "==", opNe: "!=", opGt: ">", opGe: ">=", opLt: "<", opLe: "<=",
	opExists: "exists", opNotExists: "!exists", opIn: "in", opNotIn: "!in",
	opMatches: "=~", opNotMatches: "!~",
}

type opSet uint16

func ops(list ...opKind) opSet {
	var s opSet
	for _, o := range list {
		s |= 1 << o
	}
	return s
}

func (s opSet) has(o opKind) bool { return o != 0 && s&(1<<o) != 0 }

// subjectOps are the operators each subject accepts: those the ECS
// documentation lists for it, every operator for attributes, and the string
// operators plus exists for task:group (for which it lists none).
var subjectOps = [...]opSet{
	subjAttribute:         ops(opEq, opNe, opGt, opGe, opLt, opLe, opExists, opNotExists, opIn, opNotIn, opMatches, opNotMatches),
	subjEC2InstanceID:     ops(opEq, opNe, opIn, opNotIn, opMatches, opNotMatches),
	subjAgentConnected:    ops(opEq, opNe, opIn, opNotIn, opMatches, opNotMatches),
	subjAgentVersion:      ops(opEq, opNe, opGt, opGe, opLt, opLe),
	subjRegisteredAt:      ops(opEq, opNe, opGt, opGe, opLt, opLe),
	subjRunningTasksCount: ops(opEq, opNe, opGt, opGe, opLt, opLe),
	subjTaskGroup:         ops(opEq, opNe, opExists, opNotExists, opIn, opNotIn, opMatches, opNotMatches),
}

// cmpNode is one comparison: subject operator [argument].
type cmpNode struct {
	subj    subjectKind
	name    string // attribute name
	op      opKind
	args    []string // the argument, or the argument list of in / not_in
	set     map[string]struct{}
	re      *matcher
	num     float64 // numeric argument (runningTasksCount; attribute when numeric)
	numeric bool    // attribute ordering compares numbers when both sides are numbers
	when    time.Time
}

func (c *cmpNode) subject() string {
	if c.subj == subjAttribute {
		return "attribute:" + c.name
	}
	return subjectNames[c.subj]
}

func (c *cmpNode) write(b *strings.Builder, _ int) {
	b.WriteString(c.subject())
	b.WriteByte(' ')
	b.WriteString(opSymbols[c.op])
	switch c.op {
	case opExists, opNotExists:
	case opIn, opNotIn:
		b.WriteString(" [")
		for i, a := range c.args {
			if i > 0 {
				b.WriteString(", ")
			}
			writeValue(b, a)
		}
		b.WriteByte(']')
	default:
		b.WriteByte(' ')
		writeValue(b, c.args[0])
	}
}

// writeValue writes a value bare when the parser would read it back
// unchanged, and quoted otherwise. A parsed value never holds both quote
// characters, so one of them always works.
func writeValue(b *strings.Builder, v string) {
	if v != "" && bareLen(v) == len(v) {
		b.WriteString(v)
		return
	}
	q := byte('\'')
	if strings.IndexByte(v, '\'') >= 0 {
		q = '"'
	}
	b.WriteByte(q)
	b.WriteString(v)
	b.WriteByte(q)
}

func (c *cmpNode) eval(v *view) bool {
	in := v.in
	switch c.subj {
	case subjAttribute:
		val, ok := in.Attributes[c.name]
		return c.one(val, ok)
	case subjEC2InstanceID:
		return c.one(in.EC2InstanceID, in.EC2InstanceID != "")
	case subjAgentConnected:
		if in.AgentConnected {
			return c.one("true", true)
		}
		return c.one("false", true)
	case subjAgentVersion:
		cmp, ok := compareVersions(in.AgentVersion, c.args[0])
		return ok && c.order(cmp)
	case subjRegisteredAt:
		return !in.RegisteredAt.IsZero() && c.order(in.RegisteredAt.Compare(c.when))
	case subjRunningTasksCount:
		return c.order(compareFloat(float64(in.RunningTasksCount), c.num))
	case subjTaskGroup:
		switch c.op {
		case opExists:
			return len(in.Tasks)+len(v.placed) > 0
		case opNotExists:
			return len(in.Tasks)+len(v.placed) == 0
		}
		for i := range in.Tasks {
			if c.test(in.Tasks[i].Group) {
				return true
			}
		}
		for _, g := range v.placed {
			if c.test(g) {
				return true
			}
		}
	}
	return false
}

// one evaluates the comparison on a subject with at most one value.
func (c *cmpNode) one(val string, ok bool) bool {
	switch c.op {
	case opExists:
		return ok
	case opNotExists:
		return !ok
	}
	return ok && c.test(val)
}

// test evaluates the comparison on one value of a string subject.
func (c *cmpNode) test(val string) bool {
	switch c.op {
	case opEq:
		return val == c.args[0]
	case opNe:
		return val != c.args[0]
	case opIn:
		return c.contains(val)
	case opNotIn:
		return !c.contains(val)
	case opMatches:
		return c.re.MatchString(val)
	case opNotMatches:
		return !c.re.MatchString(val)
	}
	if c.numeric {
		if f, err := strconv.ParseFloat(val, 64); err == nil {
			return c.order(compareFloat(f, c.num))
		}
	}
	return c.order(strings.Compare(val, c.args[0]))
}

func (c *cmpNode) contains(val string) bool {
	if c.set != nil {
		_, ok := c.set[val]
		return ok
	}
	for _, a := range c.args {
		if a == val {
			return true
		}
	}
	return false
}

// order turns a three-way comparison of the value with the argument into
// the operator's answer.
func (c *cmpNode) order(cmp int) bool {
	switch c.op {
	case opEq:
		return cmp == 0
	case opNe:
		return cmp != 0
	case opGt:
		return cmp > 0
	case opGe:
		return cmp >= 0
	case opLt:
		return cmp < 0
	case opLe:
		return cmp <= 0
	}
	return false
}

func compareFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// compareVersions compares dotted version numbers part by part, a missing
// part counting as 0 (1.14 == 1.14.0). ok is false when a is not a version.
func compareVersions(a, b string) (cmp int, ok bool) {
	if !validVersion(a) {
		return 0, false
	}
	for a != "" || b != "" {
		var x, y uint64
		x, a = versionPart(a)
		y, b = versionPart(b)
		if x != y {
			if x < y {
				return -1, true
			}
			return 1, true
		}
	}
	return 0, true
}

func versionPart(s string) (uint64, string) {
	var n uint64
	i := 0
	for ; i < len(s) && s[i] != '.'; i++ {
		if n < 1<<59 {
			n = n*10 + uint64(s[i]-'0')
		}
	}
	if i < len(s) {
		i++
	}
	return n, s[i:]
}
