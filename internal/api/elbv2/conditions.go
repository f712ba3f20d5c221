package elbv2

import (
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/berthdev/berth/internal/awsmodel/elbv2types"
)

// Condition fields.
const (
	fieldHostHeader  = "host-header"
	fieldPathPattern = "path-pattern"
	fieldHTTPHeader  = "http-header"
	fieldMethod      = "http-request-method"
	fieldQueryString = "query-string"
	fieldSourceIP    = "source-ip"
)

// ELB's condition limits: at most 5 match evaluations (condition values)
// and 5 wildcards per rule, 3 values per condition.
const (
	maxConditionValues  = 5
	maxWildcards        = 5
	maxValuesPerField   = 3
	maxConditionValueLn = 128
)

// pathChars are the characters a path pattern may hold besides
// alphanumerics and the wildcards (the model's RuleCondition Values).
const pathChars = "_-.$/~\"'@:+&"

// checkConditions checks a rule's conditions and returns them as AWS
// reports them: host-header and path-pattern conditions given in the legacy
// Values form also carry their *Config form. Regular expressions
// (RegexValues of host-header, path-pattern and http-header) are Go RE2
// expressions, which like ALB's have no lookarounds or backreferences;
// each counts as one match evaluation.
func checkConditions(conds []elbv2types.RuleCondition) ([]elbv2types.RuleCondition, error) {
	if len(conds) == 0 {
		return nil, validation("A rule must have at least one condition")
	}
	once := map[string]bool{}
	values, wildcards := 0, 0
	out := make([]elbv2types.RuleCondition, 0, len(conds))
	for _, c := range conds {
		if err := onlyConfig(c); err != nil {
			return nil, err
		}
		switch c.Field {
		case fieldHostHeader, fieldPathPattern, fieldMethod, fieldSourceIP:
			if once[c.Field] {
				return nil, validation("A rule can have only one '%s' condition", c.Field)
			}
			once[c.Field] = true
		}
		n, w, norm, err := checkCondition(c)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, validation("A '%s' condition must have at least one value", c.Field)
		}
		if n > maxValuesPerField {
			return nil, validation("A '%s' condition can have at most %d values", c.Field, maxValuesPerField)
		}
		values += n
		wildcards += w
		out = append(out, norm)
	}
	if values > maxConditionValues {
		return nil, validation("A rule can have at most %d condition values (match evaluations); this one has %d", maxConditionValues, values)
	}
	if wildcards > maxWildcards {
		return nil, validation("A rule can have at most %d wildcards in its conditions; this one has %d", maxWildcards, wildcards)
	}
	return out, nil
}

// onlyConfig refuses a configuration that does not belong to the field.
func onlyConfig(c elbv2types.RuleCondition) error {
	configs := map[string]bool{
		fieldHostHeader:  c.HostHeaderConfig != nil,
		fieldPathPattern: c.PathPatternConfig != nil,
		fieldHTTPHeader:  c.HttpHeaderConfig != nil,
		fieldMethod:      c.HttpRequestMethodConfig != nil,
		fieldQueryString: c.QueryStringConfig != nil,
		fieldSourceIP:    c.SourceIpConfig != nil,
	}
	if _, known := configs[c.Field]; !known {
		return validation("Condition field '%s' must be one of [http-header, http-request-method, host-header, path-pattern, query-string, source-ip]", c.Field)
	}
	for f, set := range configs {
		if set && f != c.Field {
			return validation("A '%s' condition cannot have the configuration of a '%s' condition", c.Field, f)
		}
	}
	if len(c.Values) > 0 && c.Field != fieldHostHeader && c.Field != fieldPathPattern {
		return validation("Values can be specified only for host-header and path-pattern conditions; use %s's configuration", c.Field)
	}
	if len(c.RegexValues) > 0 && c.Field != fieldHostHeader && c.Field != fieldPathPattern && c.Field != fieldHTTPHeader {
		return validation("RegexValues can be specified only for host-header, path-pattern and http-header conditions")
	}
	return nil
}

// checkRegex returns the regular expressions of a condition, given at its
// top level or in its configuration (not both), each compiled to check it.
// A condition matches either by values or by expressions.
func checkRegex(field string, top, config []string, values int) ([]string, error) {
	if len(top) > 0 && len(config) > 0 {
		return nil, validation("A '%s' condition takes RegexValues at its top level or in its configuration, not both", field)
	}
	re := slices.Clone(top)
	if len(config) > 0 {
		re = slices.Clone(config)
	}
	if len(re) > 0 && values > 0 {
		return nil, validation("A '%s' condition matches either values or regular expressions, not both", field)
	}
	for _, r := range re {
		if r == "" || len(r) > maxConditionValueLn {
			return nil, validation("A regular expression must be 1 to %d characters long", maxConditionValueLn)
		}
		if _, err := regexp.Compile(r); err != nil {
			return nil, validation("The regular expression '%s' is not valid: %v", r, err)
		}
	}
	return re, nil
}

// checkCondition checks one condition and returns how many values and
// wildcards it holds, and its normalised form.
func checkCondition(c elbv2types.RuleCondition) (values, wildcards int, out elbv2types.RuleCondition, err error) {
	out = elbv2types.RuleCondition{Field: c.Field}
	switch c.Field {
	case fieldHostHeader:
		vs, err := legacyOrConfig(c.Field, c.Values, c.HostHeaderConfig != nil, func() []string { return c.HostHeaderConfig.Values })
		if err != nil {
			return 0, 0, out, err
		}
		var cfgRe []string
		if c.HostHeaderConfig != nil {
			cfgRe = c.HostHeaderConfig.RegexValues
		}
		re, err := checkRegex(c.Field, c.RegexValues, cfgRe, len(vs))
		if err != nil {
			return 0, 0, out, err
		}
		for _, v := range vs {
			if err := checkHost(v); err != nil {
				return 0, 0, out, err
			}
			wildcards += countWildcards(v)
		}
		out.Values, out.RegexValues = slices.Clone(c.Values), slices.Clone(c.RegexValues)
		out.HostHeaderConfig = &elbv2types.HostHeaderConditionConfig{Values: vs, RegexValues: re}
		return len(vs) + len(re), wildcards, out, nil
	case fieldPathPattern:
		vs, err := legacyOrConfig(c.Field, c.Values, c.PathPatternConfig != nil, func() []string { return c.PathPatternConfig.Values })
		if err != nil {
			return 0, 0, out, err
		}
		var cfgRe []string
		if c.PathPatternConfig != nil {
			cfgRe = c.PathPatternConfig.RegexValues
		}
		re, err := checkRegex(c.Field, c.RegexValues, cfgRe, len(vs))
		if err != nil {
			return 0, 0, out, err
		}
		for _, v := range vs {
			if err := checkPath(v); err != nil {
				return 0, 0, out, err
			}
			wildcards += countWildcards(v)
		}
		out.Values, out.RegexValues = slices.Clone(c.Values), slices.Clone(c.RegexValues)
		out.PathPatternConfig = &elbv2types.PathPatternConditionConfig{Values: vs, RegexValues: re}
		return len(vs) + len(re), wildcards, out, nil
	case fieldHTTPHeader:
		h := c.HttpHeaderConfig
		if h == nil {
			return 0, 0, out, validation("An http-header condition must specify HttpHeaderConfig")
		}
		if err := checkHeaderName(h.HttpHeaderName); err != nil {
			return 0, 0, out, err
		}
		re, err := checkRegex(c.Field, c.RegexValues, h.RegexValues, len(h.Values))
		if err != nil {
			return 0, 0, out, err
		}
		for _, v := range h.Values {
			if err := checkValue(c.Field, v); err != nil {
				return 0, 0, out, err
			}
			wildcards += countWildcards(v)
		}
		out.RegexValues = slices.Clone(c.RegexValues)
		out.HttpHeaderConfig = &elbv2types.HttpHeaderConditionConfig{HttpHeaderName: h.HttpHeaderName, Values: slices.Clone(h.Values), RegexValues: re}
		return len(h.Values) + len(re), wildcards, out, nil
	case fieldMethod:
		m := c.HttpRequestMethodConfig
		if m == nil {
			return 0, 0, out, validation("An http-request-method condition must specify HttpRequestMethodConfig")
		}
		for _, v := range m.Values {
			if err := checkMethod(v); err != nil {
				return 0, 0, out, err
			}
		}
		out.HttpRequestMethodConfig = &elbv2types.HttpRequestMethodConditionConfig{Values: slices.Clone(m.Values)}
		return len(m.Values), 0, out, nil
	case fieldQueryString:
		q := c.QueryStringConfig
		if q == nil {
			return 0, 0, out, validation("A query-string condition must specify QueryStringConfig")
		}
		for _, kv := range q.Values {
			if kv.Value == "" {
				return 0, 0, out, validation("Each query-string value must specify a Value (the Key is optional)")
			}
			if len(kv.Key) > maxConditionValueLn || len(kv.Value) > maxConditionValueLn {
				return 0, 0, out, validation("Query-string keys and values can be at most %d characters long", maxConditionValueLn)
			}
			wildcards += countWildcards(kv.Key) + countWildcards(kv.Value)
		}
		out.QueryStringConfig = &elbv2types.QueryStringConditionConfig{Values: slices.Clone(q.Values)}
		return len(q.Values), wildcards, out, nil
	default: // fieldSourceIP
		sc := c.SourceIpConfig
		if sc == nil {
			return 0, 0, out, validation("A source-ip condition must specify SourceIpConfig")
		}
		if sc.IpAddressType != "" {
			return 0, 0, out, validation("SourceIpConfig.IpAddressType applies to Network Load Balancers only: give CIDR blocks in Values")
		}
		for _, v := range sc.Values {
			if _, err := netip.ParsePrefix(v); err != nil {
				return 0, 0, out, validation("The source IP '%s' is not a valid CIDR block", v)
			}
		}
		out.SourceIpConfig = &elbv2types.SourceIpConditionConfig{Values: slices.Clone(sc.Values)}
		return len(sc.Values), 0, out, nil
	}
}

// legacyOrConfig returns the values of a host-header or path-pattern
// condition given either as Values (legacy, one value) or in its
// configuration, not both.
func legacyOrConfig(field string, legacy []string, hasConfig bool, config func() []string) ([]string, error) {
	switch {
	case len(legacy) > 0 && hasConfig:
		return nil, validation("A '%s' condition takes Values or its configuration, not both", field)
	case len(legacy) > 1:
		return nil, validation("A '%s' condition takes one value in Values; give several in its configuration", field)
	case hasConfig:
		return slices.Clone(config()), nil
	}
	return slices.Clone(legacy), nil
}

func countWildcards(v string) int {
	n := 0
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++ // an escaped * or ? is literal
		case '*', '?':
			n++
		}
	}
	return n
}

func checkValue(field, v string) error {
	if v == "" || len(v) > maxConditionValueLn {
		return validation("A '%s' condition value must be 1 to %d characters long", field, maxConditionValueLn)
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] == 0x7f {
			return validation("A '%s' condition value cannot contain control characters", field)
		}
	}
	return nil
}

// checkHost checks a host name pattern: letters, digits, '-', '.', and the
// wildcards; at least one '.', and only letters after the last one.
func checkHost(v string) error {
	if err := checkValue(fieldHostHeader, v); err != nil {
		return err
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-.*?", r)) {
			return validation("The host name '%s' can contain only A-Z, a-z, 0-9, '-', '.', '*' and '?'", v)
		}
	}
	i := strings.LastIndexByte(v, '.')
	if i < 0 {
		return validation("The host name '%s' must contain at least one '.'", v)
	}
	for _, r := range v[i+1:] {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '*' || r == '?') {
			return validation("The host name '%s' can have only letters after its last '.'", v)
		}
	}
	return nil
}

func checkPath(v string) error {
	if err := checkValue(fieldPathPattern, v); err != nil {
		return err
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(pathChars+"*?", r)) {
			return validation("The path pattern '%s' can contain only A-Z, a-z, 0-9, the characters %s and the wildcards * and ?", v, pathChars)
		}
	}
	return nil
}

// checkHeaderName checks an HTTP header name: an RFC 7230 token of at most
// 40 characters, not Host (a host-header condition matches that).
func checkHeaderName(name string) error {
	if name == "" || len(name) > 40 {
		return validation("An HTTP header name must be 1 to 40 characters long")
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return validation("The HTTP header name '%s' is not a valid token", name)
		}
	}
	if strings.EqualFold(name, "host") {
		return validation("Use a host-header condition to match the Host header")
	}
	return nil
}

// checkMethod checks an HTTP method: A-Z, '-' and '_', at most 40
// characters, matched exactly.
func checkMethod(v string) error {
	if v == "" || len(v) > 40 {
		return validation("An HTTP request method must be 1 to 40 characters long")
	}
	for _, r := range v {
		if !(r >= 'A' && r <= 'Z' || r == '-' || r == '_') {
			return validation("The HTTP request method '%s' can contain only A-Z, '-' and '_'", v)
		}
	}
	return nil
}
