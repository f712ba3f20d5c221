package awsmodel

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxReported caps the violations listed in one ValidationError.
const maxReported = 10

// Violation is one failed constraint on one member.
type Violation struct {
	// Field is the member's path in the request, e.g. containerDefinitions[0].name.
	Field string
	// Constraint says what the member failed to satisfy.
	Constraint string
	// Value is the offending value when it is safe to echo (enum values,
	// numbers), else empty.
	Value string
}

// ValidationError lists the model constraints a request broke.
type ValidationError struct{ Violations []Violation }

// Error words the violations as AWS does: "1 validation error detected: Value
// 'x' at 'field' failed to satisfy constraint: ...".
func (e *ValidationError) Error() string {
	var b strings.Builder
	n := len(e.Violations)
	if n == 1 {
		b.WriteString("1 validation error detected: ")
	} else {
		fmt.Fprintf(&b, "%d validation errors detected: ", n)
	}
	for i, v := range e.Violations {
		if i == maxReported {
			b.WriteString("; ...")
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString("Value ")
		if v.Value != "" {
			b.WriteString(v.Value + " ")
		}
		b.WriteString("at '" + v.Field + "' failed to satisfy constraint: " + v.Constraint)
	}
	return b.String()
}

// requiredConstraint is the violation of a missing required member.
const requiredConstraint = "Member must not be null"

// Validator walks a request and records violations with the path of each
// member. The zero value is ready to use. Paths are built only when a
// violation is recorded, so a valid request costs no allocations.
type Validator struct {
	path       []pathElem
	violations []Violation
}

type pathElem struct {
	name  string
	index int // -1 for a member, >= 0 for a list index, -2 for a map key
	key   string
}

// Err returns a *ValidationError, or nil if nothing was violated.
func (v *Validator) Err() error {
	if len(v.violations) == 0 {
		return nil
	}
	return &ValidationError{Violations: v.violations}
}

// push grows the path; the first push sizes it for the deepest ECS shapes,
// so walking a request costs one allocation at most.
func (v *Validator) push(e pathElem) {
	if v.path == nil {
		v.path = make([]pathElem, 0, 16)
	}
	v.path = append(v.path, e)
}

// Enter descends into member name.
func (v *Validator) Enter(name string) { v.push(pathElem{name: name, index: -1}) }

// EnterIndex descends into element i of the current list.
func (v *Validator) EnterIndex(i int) { v.push(pathElem{index: i}) }

// EnterKey descends into the value at key of the current map.
func (v *Validator) EnterKey(k string) { v.push(pathElem{index: -2, key: k}) }

// Leave undoes the last Enter*.
func (v *Validator) Leave() { v.path = v.path[:len(v.path)-1] }

func (v *Validator) field(member string) string {
	var b strings.Builder
	for _, p := range v.path {
		switch p.index {
		case -1:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(p.name)
		case -2:
			b.WriteString("[" + strconv.Quote(p.key) + "]")
		default:
			b.WriteString("[" + strconv.Itoa(p.index) + "]")
		}
	}
	if member != "" {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(member)
	}
	return b.String()
}

// Fail records a violation of member (relative to the current path).
func (v *Validator) Fail(member, constraint, value string) {
	v.violations = append(v.violations, Violation{Field: v.field(member), Constraint: constraint, Value: value})
}

// Required records that member is missing.
func (v *Validator) Required(member string) {
	v.Fail(member, requiredConstraint, "null")
}

// Enum checks that a non-empty s is one of values.
func (v *Validator) Enum(member, s string, values []string) {
	if s == "" {
		return
	}
	for _, x := range values {
		if x == s {
			return
		}
	}
	shown := s
	if len(shown) > 64 {
		shown = shown[:64] + "..."
	}
	v.Fail(member, "Member must satisfy enum value set: ["+strings.Join(values, ", ")+"]", strconv.Quote(shown))
}

// StringLen checks the length in characters of s against min and max
// (max < 0 means unbounded). Empty optional strings are not checked.
func (v *Validator) StringLen(member, s string, min, max int) {
	if s == "" && min <= 0 {
		return
	}
	n := utf8.RuneCountInString(s)
	if n < min {
		v.Fail(member, fmt.Sprintf("Member must have length greater than or equal to %d", min), "")
	}
	if max >= 0 && n > max {
		v.Fail(member, fmt.Sprintf("Member must have length less than or equal to %d", max), "")
	}
}

// Pattern checks a non-empty s against re (anchored by the generator).
func (v *Validator) Pattern(member, s string, re *regexp.Regexp) {
	if s == "" || re.MatchString(s) {
		return
	}
	v.Fail(member, "Member must satisfy regular expression pattern: "+re.String(), "")
}

// ListLen checks the number of elements of a list or map.
func (v *Validator) ListLen(member string, n, min, max int) {
	if n < min {
		v.Fail(member, fmt.Sprintf("Member must have length greater than or equal to %d", min), "")
	}
	if max >= 0 && n > max {
		v.Fail(member, fmt.Sprintf("Member must have length less than or equal to %d", max), "")
	}
}

// Range checks a number against min and max.
func (v *Validator) Range(member string, x, min, max float64, hasMin, hasMax bool) {
	if hasMin && x < min {
		v.Fail(member, "Member must have value greater than or equal to "+strconv.FormatFloat(min, 'f', -1, 64), strconv.FormatFloat(x, 'f', -1, 64))
	}
	if hasMax && x > max {
		v.Fail(member, "Member must have value less than or equal to "+strconv.FormatFloat(max, 'f', -1, 64), strconv.FormatFloat(x, 'f', -1, 64))
	}
}

// MustCompile compiles a model pattern, anchored as AWS matches it (the whole
// value must match).
func MustCompile(pattern string) *regexp.Regexp {
	return regexp.MustCompile(`^(?:` + pattern + `)$`)
}

// keepPresent keeps the violations of members has reports the request
// carries, and every missing required member: AWS checks only what a
// request sends.
func keepPresent(vs []Violation, has func(field string) bool) []Violation {
	var left []Violation
	for _, v := range vs {
		if v.Constraint == requiredConstraint || has(v.Field) {
			left = append(left, v)
		}
	}
	return left
}

// presentViolations is keepPresent over a JSON body.
func presentViolations(vs []Violation, body []byte) []Violation {
	var doc any
	_ = json.Unmarshal(body, &doc)
	return keepPresent(vs, func(field string) bool { return present(doc, field) })
}

// fieldStep is one step of a member path as the Validator names it
// (a.b[0].c, m["k"]): a member, a list index or a map key.
type fieldStep struct {
	kind   stepKind
	member string
	index  int
	key    string
}

type stepKind int

const (
	stepMember stepKind = iota
	stepIndex
	stepKey
)

// walkField calls step for each step of path until it returns false. It
// reports whether every step was taken, and whether path was malformed
// (a "[" without "]", or an index that is not a number).
func walkField(path string, step func(fieldStep) bool) (walked, malformed bool) {
	for path != "" {
		var st fieldStep
		switch {
		case path[0] == '.':
			path = path[1:]
			continue
		case path[0] == '[':
			end := strings.IndexByte(path, ']')
			if end < 0 {
				return false, true
			}
			seg := path[1:end]
			path = path[end+1:]
			if k, err := strconv.Unquote(seg); err == nil {
				st = fieldStep{kind: stepKey, key: k}
			} else if i, err := strconv.Atoi(seg); err == nil {
				st = fieldStep{kind: stepIndex, index: i}
			} else {
				return false, true
			}
		default:
			end := strings.IndexAny(path, ".[")
			if end < 0 {
				end = len(path)
			}
			st = fieldStep{kind: stepMember, member: path[:end]}
			path = path[end:]
		}
		if !step(st) {
			return false, false
		}
	}
	return true, false
}

// present reports whether the member at path is in doc (decoded JSON) and
// not null. A malformed path counts as present, so its violation stays.
func present(doc any, path string) bool {
	walked, malformed := walkField(path, func(st fieldStep) bool {
		switch st.kind {
		case stepIndex:
			list, ok := doc.([]any)
			if !ok || st.index < 0 || st.index >= len(list) {
				return false
			}
			doc = list[st.index]
			return true
		case stepKey:
			m, _ := doc.(map[string]any)
			var ok bool
			doc, ok = m[st.key]
			return ok
		}
		m, ok := doc.(map[string]any)
		if !ok {
			return false
		}
		doc, ok = m[st.member]
		return ok
	})
	return malformed || walked && doc != nil
}
