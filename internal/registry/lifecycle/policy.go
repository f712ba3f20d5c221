// Package lifecycle parses Amazon ECR lifecycle policies and evaluates them
// against a repository's images. It is pure: images, the policy and the
// current time go in; the digests to expire, each with the rule that expired
// it, come out. The controller that applies policies (internal/controller)
// and the ECR API's lifecycle policy preview both use it.
//
// Berth supports the expire action with the imageCountMoreThan and
// sinceImagePushed count types, which is ECR's lifecycle policy language
// without the archive storage class.
package lifecycle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// TagStatus selects images by whether they are tagged.
type TagStatus string

// Tag statuses of a rule's selection.
const (
	Tagged   TagStatus = "tagged"
	Untagged TagStatus = "untagged"
	Any      TagStatus = "any"
)

// Count types of a rule's selection.
const (
	// ImageCountMoreThan keeps the newest CountNumber selected images.
	ImageCountMoreThan = "imageCountMoreThan"
	// SinceImagePushed expires selected images pushed more than CountNumber
	// days ago.
	SinceImagePushed = "sinceImagePushed"
)

// ActionExpire is the one action Berth applies.
const ActionExpire = "expire"

// MaxWildcards is the most '*' one tagPatternList entry may hold (ECR's limit).
const MaxWildcards = 4

// Policy is a parsed lifecycle policy: its rules in ascending priority.
type Policy struct {
	Rules []Rule
}

// Rule is one rule of a policy.
type Rule struct {
	// Priority is rulePriority: unique within the policy, lowest applied first.
	Priority    int
	Description string
	TagStatus   TagStatus
	// TagPrefixes and TagPatterns (at most one of them, only for Tagged):
	// an image is selected when each entry matches one of its tags.
	TagPrefixes []string
	TagPatterns []string
	// CountType is ImageCountMoreThan or SinceImagePushed; CountUnit is
	// "days" for SinceImagePushed and empty otherwise.
	CountType   string
	CountUnit   string
	CountNumber int
}

// Error says what is wrong with a policy text. Its message names the rule
// and property at fault.
type Error struct{ Msg string }

// Error returns the message.
func (e *Error) Error() string { return e.Msg }

func invalid(format string, args ...any) error { return &Error{Msg: fmt.Sprintf(format, args...)} }

// Parse reads and validates a policy text with ECR's rules.
func Parse(text string) (*Policy, error) {
	top, err := object(json.RawMessage(text), "the policy")
	if err != nil {
		return nil, err
	}
	if err := only(top, "the policy", "rules"); err != nil {
		return nil, err
	}
	raw, ok := top["rules"]
	if !ok {
		return nil, invalid(`the policy has no "rules" array`)
	}
	var rules []json.RawMessage
	if err := strict(raw, &rules); err != nil || rules == nil {
		return nil, invalid(`"rules" must be an array of rule objects`)
	}
	if len(rules) == 0 {
		return nil, invalid(`"rules" must hold at least one rule`)
	}
	p := &Policy{}
	for i, r := range rules {
		rule, err := parseRule(r, i)
		if err != nil {
			return nil, err
		}
		p.Rules = append(p.Rules, rule)
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	slices.SortFunc(p.Rules, func(a, b Rule) int { return a.Priority - b.Priority })
	return p, nil
}

func parseRule(raw json.RawMessage, i int) (Rule, error) {
	where := fmt.Sprintf("rule %d", i+1)
	obj, err := object(raw, where)
	if err != nil {
		return Rule{}, err
	}
	if err := only(obj, where, "rulePriority", "description", "selection", "action"); err != nil {
		return Rule{}, err
	}
	if err := required(obj, where, "rulePriority", "selection", "action"); err != nil {
		return Rule{}, err
	}
	var r Rule
	if r.Priority, err = integer(obj["rulePriority"], where+": rulePriority"); err != nil {
		return r, err
	}
	if r.Priority < 1 {
		return r, invalid("%s: rulePriority must be a positive integer, not %d", where, r.Priority)
	}
	where = fmt.Sprintf("rule with rulePriority %d", r.Priority)
	if d, ok := obj["description"]; ok {
		if strict(d, &r.Description) != nil {
			return r, invalid("%s: description must be a string", where)
		}
	}
	if err := parseSelection(obj["selection"], where, &r); err != nil {
		return r, err
	}
	return r, parseAction(obj["action"], where)
}

func parseSelection(raw json.RawMessage, where string, r *Rule) error {
	sel, err := object(raw, where+": selection")
	if err != nil {
		return err
	}
	if err := only(sel, where+": selection", "tagStatus", "tagPrefixList", "tagPatternList", "countType", "countUnit", "countNumber", "storageClass"); err != nil {
		return err
	}
	if err := required(sel, where+": selection", "tagStatus", "countType", "countNumber"); err != nil {
		return err
	}
	var status string
	if strict(sel["tagStatus"], &status) != nil {
		return invalid("%s: tagStatus must be a string", where)
	}
	r.TagStatus = TagStatus(status)
	switch r.TagStatus {
	case Tagged, Untagged, Any:
	default:
		return invalid("%s: tagStatus %q is not one of tagged, untagged, any", where, status)
	}
	if r.TagPrefixes, err = stringList(sel, "tagPrefixList", where); err != nil {
		return err
	}
	if r.TagPatterns, err = stringList(sel, "tagPatternList", where); err != nil {
		return err
	}
	_, hasPrefixes := sel["tagPrefixList"]
	_, hasPatterns := sel["tagPatternList"]
	switch {
	case r.TagStatus != Tagged && (hasPrefixes || hasPatterns):
		return invalid("%s: tagPrefixList and tagPatternList may only be used with tagStatus tagged", where)
	case r.TagStatus == Tagged && hasPrefixes && hasPatterns:
		return invalid("%s: a rule may specify tagPrefixList or tagPatternList, not both", where)
	case r.TagStatus == Tagged && !hasPrefixes && !hasPatterns:
		return invalid("%s: tagStatus tagged requires a tagPrefixList or a tagPatternList", where)
	case hasPrefixes && len(r.TagPrefixes) == 0, hasPatterns && len(r.TagPatterns) == 0:
		return invalid("%s: tagPrefixList and tagPatternList must not be empty", where)
	}
	for _, p := range r.TagPrefixes {
		if p == "" {
			return invalid("%s: tagPrefixList entries must not be empty", where)
		}
	}
	for _, p := range r.TagPatterns {
		if p == "" {
			return invalid("%s: tagPatternList entries must not be empty", where)
		}
		if strings.Count(p, "*") > MaxWildcards {
			return invalid("%s: tagPatternList entry %q has more than %d wildcards (*)", where, p, MaxWildcards)
		}
	}
	if sc, ok := sel["storageClass"]; ok {
		var s string
		if strict(sc, &s) != nil || s != "standard" {
			return invalid("%s: storageClass %s is not supported: Berth has only the standard storage class", where, sc)
		}
	}
	if strict(sel["countType"], &r.CountType) != nil {
		return invalid("%s: countType must be a string", where)
	}
	if r.CountNumber, err = integer(sel["countNumber"], where+": countNumber"); err != nil {
		return err
	}
	if r.CountNumber < 1 {
		return invalid("%s: countNumber must be at least 1, not %d", where, r.CountNumber)
	}
	unit, hasUnit := sel["countUnit"]
	if hasUnit && strict(unit, &r.CountUnit) != nil {
		return invalid("%s: countUnit must be a string", where)
	}
	switch r.CountType {
	case ImageCountMoreThan:
		if hasUnit {
			return invalid("%s: countUnit may only be used with countType sinceImagePushed", where)
		}
	case SinceImagePushed:
		if !hasUnit {
			return invalid("%s: countType sinceImagePushed requires countUnit \"days\"", where)
		}
		if r.CountUnit != "days" {
			return invalid("%s: countUnit %q is not supported: the only unit is \"days\"", where, r.CountUnit)
		}
	case "sinceImagePulled", "sinceImageTransitioned":
		return invalid("%s: countType %s is not supported: Berth supports imageCountMoreThan and sinceImagePushed", where, r.CountType)
	default:
		return invalid("%s: countType %q is not one of imageCountMoreThan, sinceImagePushed", where, r.CountType)
	}
	return nil
}

func parseAction(raw json.RawMessage, where string) error {
	act, err := object(raw, where+": action")
	if err != nil {
		return err
	}
	if err := only(act, where+": action", "type", "targetStorageClass"); err != nil {
		return err
	}
	if err := required(act, where+": action", "type"); err != nil {
		return err
	}
	var typ string
	if strict(act["type"], &typ) != nil {
		return invalid("%s: action type must be a string", where)
	}
	switch {
	case typ == "transition":
		return invalid("%s: action type transition is not supported: Berth supports only the expire action", where)
	case typ != ActionExpire:
		return invalid("%s: action type %q is not supported: Berth supports only the expire action", where, typ)
	case act["targetStorageClass"] != nil:
		return invalid("%s: targetStorageClass may only be used with the transition action", where)
	}
	return nil
}

// check applies the rules that span rules.
func (p *Policy) check() error {
	seen := map[int]bool{}
	maxPriority, untagged := 0, 0
	prefixSets := map[string]int{}
	for _, r := range p.Rules {
		if seen[r.Priority] {
			return invalid("rulePriority %d is used by more than one rule: each rule needs a unique rulePriority", r.Priority)
		}
		seen[r.Priority] = true
		maxPriority = max(maxPriority, r.Priority)
		if r.TagStatus == Untagged {
			untagged++
		}
		if r.TagStatus == Tagged {
			key := setKey(r.TagPrefixes) + "\x01" + setKey(r.TagPatterns)
			if other, dup := prefixSets[key]; dup {
				return invalid("rules with rulePriority %d and %d select the same tags: the rules must have a unique set of tag prefixes and patterns", other, r.Priority)
			}
			prefixSets[key] = r.Priority
		}
	}
	if untagged > 1 {
		return invalid("only one rule may select untagged images (tagStatus untagged)")
	}
	for _, r := range p.Rules {
		if r.TagStatus == Any && r.Priority != maxPriority {
			return invalid("the rule with tagStatus any (rulePriority %d) must have the highest rulePriority in the policy", r.Priority)
		}
	}
	return nil
}

func setKey(list []string) string {
	s := slices.Clone(list)
	slices.Sort(s)
	return strings.Join(slices.Compact(s), "\x00")
}

// object decodes a JSON object into its members.
func object(raw json.RawMessage, where string) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if strict(raw, &m) != nil || m == nil {
		return nil, invalid("%s must be a JSON object", where)
	}
	return m, nil
}

// only refuses members other than allowed.
func only(m map[string]json.RawMessage, where string, allowed ...string) error {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(allowed, k) {
			return invalid("%s has a property that is not allowed: %q", where, k)
		}
	}
	return nil
}

// required refuses a missing member.
func required(m map[string]json.RawMessage, where string, names ...string) error {
	for _, n := range names {
		if v, ok := m[n]; !ok || string(v) == "null" {
			return invalid("%s is missing the required property %q", where, n)
		}
	}
	return nil
}

func integer(raw json.RawMessage, where string) (int, error) {
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&n) != nil {
		return 0, invalid("%s must be an integer", where)
	}
	v, err := n.Int64()
	if err != nil || v > 1<<31-1 || v < -(1<<31) {
		return 0, invalid("%s must be an integer, not %s", where, n)
	}
	return int(v), nil
}

func stringList(m map[string]json.RawMessage, name, where string) ([]string, error) {
	raw, ok := m[name]
	if !ok {
		return nil, nil
	}
	var out []string
	if strict(raw, &out) != nil {
		return nil, invalid("%s: %s must be a list of strings", where, name)
	}
	return out, nil
}

// strict decodes raw into v, refusing trailing data.
func strict(raw json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data")
	}
	return nil
}
