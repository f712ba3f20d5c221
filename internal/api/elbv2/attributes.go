package elbv2

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/berthdev/berth/internal/awsmodel/elbv2types"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// attribute is one load balancer or target group attribute: its key, its
// default and what values it takes. Berth stores every attribute; the data
// plane acts on those it implements (idle timeout, HTTP/2, header
// handling, deregistration delay, slow start, algorithm, stickiness) and
// the rest (logs to S3, WAF, zonal shift, DNS failover) are recorded only.
type attribute struct {
	key   string
	def   string
	check func(string) error
}

func oneOf(values ...string) func(string) error {
	return func(v string) error {
		for _, x := range values {
			if v == x {
				return nil
			}
		}
		return fmt.Errorf("must be one of %s", strings.Join(values, ", "))
	}
}

var boolean = oneOf("true", "false")

func anyValue(string) error { return nil }

// intRange accepts an integer in [lo, hi], and "off" when off is set.
func intRange(lo, hi int, off bool) func(string) error {
	return func(v string) error {
		if off && v == "off" {
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			if off {
				return fmt.Errorf("must be off or an integer from %d to %d", lo, hi)
			}
			return fmt.Errorf("must be an integer from %d to %d", lo, hi)
		}
		return nil
	}
}

// lbAttributes are an Application Load Balancer's attributes in the order
// DescribeLoadBalancerAttributes lists them, with AWS's defaults and
// ranges (the model's LoadBalancerAttribute documentation).
var lbAttributes = []attribute{
	{"access_logs.s3.enabled", "false", boolean},
	{"access_logs.s3.bucket", "", anyValue},
	{"access_logs.s3.prefix", "", anyValue},
	{"client_keep_alive.seconds", "3600", intRange(60, 604800, false)},
	{"connection_logs.s3.enabled", "false", boolean},
	{"connection_logs.s3.bucket", "", anyValue},
	{"connection_logs.s3.prefix", "", anyValue},
	{"deletion_protection.enabled", "false", boolean},
	{"health_check_logs.s3.enabled", "false", boolean},
	{"health_check_logs.s3.bucket", "", anyValue},
	{"health_check_logs.s3.prefix", "", anyValue},
	{"idle_timeout.timeout_seconds", "60", intRange(1, 4000, false)},
	{"ipv6.deny_all_igw_traffic", "false", boolean},
	// Always on for Application Load Balancers: AWS refuses to turn it off.
	{"load_balancing.cross_zone.enabled", "true", oneOf("true")},
	{"routing.http.desync_mitigation_mode", "defensive", oneOf("monitor", "defensive", "strictest")},
	{"routing.http.drop_invalid_header_fields.enabled", "false", boolean},
	{"routing.http.preserve_host_header.enabled", "false", boolean},
	{"routing.http.x_amzn_tls_version_and_cipher_suite.enabled", "false", boolean},
	{"routing.http.xff_client_port.enabled", "false", boolean},
	{"routing.http.xff_header_processing.mode", "append", oneOf("append", "preserve", "remove")},
	{"routing.http2.enabled", "true", boolean},
	{"waf.fail_open.enabled", "false", boolean},
	{"zonal_shift.config.enabled", "false", boolean},
}

// tgAttributes are an HTTP/HTTPS target group's attributes (instance or ip
// targets) in the order DescribeTargetGroupAttributes lists them.
var tgAttributes = []attribute{
	{"deregistration_delay.timeout_seconds", "300", intRange(0, 3600, false)},
	{"stickiness.enabled", "false", boolean},
	{"stickiness.type", "lb_cookie", oneOf("lb_cookie", "app_cookie")},
	{"stickiness.lb_cookie.duration_seconds", "86400", intRange(1, 604800, false)},
	{"stickiness.app_cookie.cookie_name", "", checkCookieName},
	{"stickiness.app_cookie.duration_seconds", "86400", intRange(1, 604800, false)},
	{"slow_start.duration_seconds", "0", checkSlowStart},
	// weighted_random is accepted; Berth's data plane picks uniformly at
	// random among healthy targets for it (it has no anomaly detection).
	{"load_balancing.algorithm.type", "round_robin", oneOf("round_robin", "least_outstanding_requests", "weighted_random")},
	{"load_balancing.algorithm.anomaly_mitigation", "off", oneOf("on", "off")},
	{"load_balancing.cross_zone.enabled", "use_load_balancer_configuration", oneOf("true", "false", "use_load_balancer_configuration")},
	{"target_group_health.dns_failover.minimum_healthy_targets.count", "1", intRange(1, maxTargetsPerGroup, true)},
	{"target_group_health.dns_failover.minimum_healthy_targets.percentage", "off", intRange(1, 100, true)},
	{"target_group_health.unhealthy_state_routing.minimum_healthy_targets.count", "1", intRange(1, maxTargetsPerGroup, false)},
	{"target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage", "off", intRange(1, 100, true)},
}

func checkSlowStart(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n != 0 && (n < 30 || n > 900) {
		return fmt.Errorf("must be 0 (off) or an integer from 30 to 900")
	}
	return nil
}

func checkCookieName(v string) error {
	for _, p := range []string{"AWSALB", "AWSALBAPP", "AWSALBTG"} {
		if strings.HasPrefix(v, p) {
			return fmt.Errorf("cookie names starting with %s are reserved for the load balancer", p)
		}
	}
	return nil
}

func defaults(table []attribute) map[string]string {
	m := make(map[string]string, len(table))
	for _, a := range table {
		m[a.key] = a.def
	}
	return m
}

// lbAttributeDefaults are a new load balancer's attributes: internal load
// balancers deny internet gateway traffic over IPv6.
func lbAttributeDefaults(scheme elbv2types.LoadBalancerSchemeEnum) map[string]string {
	m := defaults(lbAttributes)
	if scheme == elbv2types.LoadBalancerSchemeEnumInternal {
		m["ipv6.deny_all_igw_traffic"] = "true"
	}
	return m
}

// applyAttributes sets the given key/value pairs on current (a copy is
// returned), checking each against table. An unknown key is refused as AWS
// refuses it (InvalidConfigurationRequest "Key … not valid").
func applyAttributes(table []attribute, current map[string]string, keys, values []string) (map[string]string, error) {
	out := defaults(table)
	for k, v := range current {
		out[k] = v
	}
	for i, k := range keys {
		var spec *attribute
		for j := range table {
			if table[j].key == k {
				spec = &table[j]
			}
		}
		if spec == nil {
			return nil, invalidConfig("Key %s not valid", k)
		}
		if err := spec.check(values[i]); err != nil {
			return nil, validation("The value '%s' of attribute '%s' is not valid: it %v", values[i], k, err)
		}
		out[k] = values[i]
	}
	return out, nil
}

// render lists attrs in table order, defaults filled in.
func render(table []attribute, attrs map[string]string) [][2]string {
	out := make([][2]string, len(table))
	for i, a := range table {
		v, ok := attrs[a.key]
		if !ok {
			v = a.def
		}
		out[i] = [2]string{a.key, v}
	}
	return out
}

// checkLogs refuses logs switched on without a bucket to write them to.
func checkLogs(attrs map[string]string) error {
	for _, kind := range []string{"access_logs", "connection_logs", "health_check_logs"} {
		if attrs[kind+".s3.enabled"] == "true" && attrs[kind+".s3.bucket"] == "" {
			return invalidConfig("The value of '%s.s3.bucket' cannot be empty when '%s.s3.enabled' is true", kind, kind)
		}
	}
	return nil
}

// checkStickiness applies the rules between target group attributes.
func checkStickiness(attrs map[string]string) error {
	if attrs["stickiness.enabled"] == "true" && attrs["stickiness.type"] == "app_cookie" && attrs["stickiness.app_cookie.cookie_name"] == "" {
		return invalidConfig("An application cookie name (stickiness.app_cookie.cookie_name) must be specified for app_cookie stickiness")
	}
	if attrs["load_balancing.algorithm.anomaly_mitigation"] == "on" && attrs["load_balancing.algorithm.type"] != "weighted_random" {
		return invalidConfig("Anomaly mitigation (load_balancing.algorithm.anomaly_mitigation) requires the weighted_random algorithm")
	}
	return nil
}

func lbAttributeList(attrs map[string]string) []elbv2types.LoadBalancerAttribute {
	var out []elbv2types.LoadBalancerAttribute
	for _, kv := range render(lbAttributes, attrs) {
		out = append(out, elbv2types.LoadBalancerAttribute{Key: kv[0], Value: kv[1]})
	}
	return out
}

func tgAttributeList(attrs map[string]string) []elbv2types.TargetGroupAttribute {
	var out []elbv2types.TargetGroupAttribute
	for _, kv := range render(tgAttributes, attrs) {
		out = append(out, elbv2types.TargetGroupAttribute{Key: kv[0], Value: kv[1]})
	}
	return out
}

// DescribeLoadBalancerAttributes lists every attribute of a load balancer.
func (s *Service) DescribeLoadBalancerAttributes(ctx context.Context, in *elbv2types.DescribeLoadBalancerAttributesInput) (*elbv2types.DescribeLoadBalancerAttributesOutput, error) {
	var lb *state.LoadBalancer
	err := s.store.View(ctx, func(tx store.ReadTx) error {
		var err error
		lb, err = s.loadBalancer(tx, in.LoadBalancerArn)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &elbv2types.DescribeLoadBalancerAttributesOutput{Attributes: lbAttributeList(lb.Attributes)}, nil
}

// ModifyLoadBalancerAttributes sets attributes of a load balancer and
// returns them all.
func (s *Service) ModifyLoadBalancerAttributes(ctx context.Context, in *elbv2types.ModifyLoadBalancerAttributesInput) (*elbv2types.ModifyLoadBalancerAttributesOutput, error) {
	if len(in.Attributes) == 0 {
		return nil, validation("At least one attribute must be specified")
	}
	keys, values := make([]string, len(in.Attributes)), make([]string, len(in.Attributes))
	for i, a := range in.Attributes {
		keys[i], values[i] = a.Key, a.Value
	}
	var attrs map[string]string
	_, err := s.store.Update(ctx, func(tx store.Tx) error {
		lb, err := s.loadBalancer(tx, in.LoadBalancerArn)
		if err != nil {
			return err
		}
		attrs, err = applyAttributes(lbAttributes, lb.Attributes, keys, values)
		if err != nil {
			return err
		}
		if err := checkLogs(attrs); err != nil {
			return err
		}
		lb.Attributes = attrs
		return state.Put(tx, state.LoadBalancerKey(lb.LoadBalancerName), lb)
	})
	if err != nil {
		return nil, err
	}
	return &elbv2types.ModifyLoadBalancerAttributesOutput{Attributes: lbAttributeList(attrs)}, nil
}

// DescribeTargetGroupAttributes lists every attribute of a target group.
func (s *Service) DescribeTargetGroupAttributes(ctx context.Context, in *elbv2types.DescribeTargetGroupAttributesInput) (*elbv2types.DescribeTargetGroupAttributesOutput, error) {
	var tg *state.TargetGroup
	err := s.store.View(ctx, func(tx store.ReadTx) error {
		var err error
		tg, err = s.targetGroup(tx, in.TargetGroupArn)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &elbv2types.DescribeTargetGroupAttributesOutput{Attributes: tgAttributeList(tg.Attributes)}, nil
}

// ModifyTargetGroupAttributes sets attributes of a target group and
// returns them all. A new deregistration delay applies to targets
// deregistered after it.
func (s *Service) ModifyTargetGroupAttributes(ctx context.Context, in *elbv2types.ModifyTargetGroupAttributesInput) (*elbv2types.ModifyTargetGroupAttributesOutput, error) {
	if len(in.Attributes) == 0 {
		return nil, validation("At least one attribute must be specified")
	}
	keys, values := make([]string, len(in.Attributes)), make([]string, len(in.Attributes))
	for i, a := range in.Attributes {
		keys[i], values[i] = a.Key, a.Value
	}
	var attrs map[string]string
	_, err := s.store.Update(ctx, func(tx store.Tx) error {
		tg, err := s.targetGroup(tx, in.TargetGroupArn)
		if err != nil {
			return err
		}
		attrs, err = applyAttributes(tgAttributes, tg.Attributes, keys, values)
		if err != nil {
			return err
		}
		if err := checkStickiness(attrs); err != nil {
			return err
		}
		tg.Attributes = attrs
		return state.Put(tx, state.TargetGroupKey(tg.TargetGroupName), tg)
	})
	if err != nil {
		return nil, err
	}
	return &elbv2types.ModifyTargetGroupAttributesOutput{Attributes: tgAttributeList(attrs)}, nil
}
