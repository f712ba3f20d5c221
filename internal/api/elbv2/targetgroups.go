package elbv2

import (
	"context"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/elbv2types"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// Health check defaults of Application Load Balancer target groups
// (instance and ip targets).
const (
	defaultHealthCheckPort     = "traffic-port"
	defaultHealthCheckPath     = "/"
	defaultGRPCHealthCheckPath = "/AWS.ALB/healthcheck"
	defaultHTTPCode            = "200"
	defaultGRPCCode            = "12"

	defaultHealthCheckInterval int32 = 30
	defaultHealthCheckTimeout  int32 = 5
	defaultHealthyThreshold    int32 = 5
	defaultUnhealthyThreshold  int32 = 2
)

// Protocol versions of HTTP and HTTPS target groups.
const (
	versionHTTP1 = "HTTP1"
	versionHTTP2 = "HTTP2"
	versionGRPC  = "GRPC"
)

// healthCheck is a request's health check settings; nil and "" are absent.
type healthCheck struct {
	enabled            *bool
	protocol           elbv2types.ProtocolEnum
	port, path         string
	interval, timeout  *int32
	healthy, unhealthy *int32
	matcher            *elbv2types.Matcher
}

// applyHealthCheck sets the given health check settings on tg (which holds
// the current or default ones), leaving the absent ones as they are, and
// checks the result as a whole.
func applyHealthCheck(tg *elbv2types.TargetGroup, hc healthCheck) error {
	// Health checks of instance and ip targets are always enabled: AWS
	// refuses to turn them off, and an absent HealthCheckEnabled is true.
	if hc.enabled != nil && !*hc.enabled {
		return validation("Health checks cannot be disabled for target groups with target type '%s'", tg.TargetType)
	}
	tg.HealthCheckEnabled = new(true)
	if hc.protocol != "" {
		tg.HealthCheckProtocol = hc.protocol
	}
	if hc.port != "" {
		tg.HealthCheckPort = hc.port
	}
	if hc.path != "" {
		tg.HealthCheckPath = hc.path
	}
	for _, f := range []struct {
		dst **int32
		v   *int32
	}{
		{&tg.HealthCheckIntervalSeconds, hc.interval},
		{&tg.HealthCheckTimeoutSeconds, hc.timeout},
		{&tg.HealthyThresholdCount, hc.healthy},
		{&tg.UnhealthyThresholdCount, hc.unhealthy},
	} {
		if f.v != nil {
			*f.dst = new(*f.v)
		}
	}
	if hc.matcher != nil {
		m := *hc.matcher
		tg.Matcher = &m
	}
	switch tg.HealthCheckProtocol {
	case elbv2types.ProtocolEnumHttp, elbv2types.ProtocolEnumHttps:
	default:
		return validation("Health check protocol '%s' is not supported for target groups with the %s protocol: use HTTP or HTTPS", tg.HealthCheckProtocol, tg.Protocol)
	}
	if tg.HealthCheckPort != defaultHealthCheckPort {
		if n, err := strconv.Atoi(tg.HealthCheckPort); err != nil || n < 1 || n > 65535 {
			return validation("Health check port '%s' is not valid: it must be traffic-port or a port from 1 to 65535", tg.HealthCheckPort)
		}
	}
	if !strings.HasPrefix(tg.HealthCheckPath, "/") || len(tg.HealthCheckPath) > 1024 {
		return validation("Health check path '%s' is not valid: it must begin with '/' and be at most 1024 characters long", tg.HealthCheckPath)
	}
	interval, timeout := awsmodel.Value(tg.HealthCheckIntervalSeconds), awsmodel.Value(tg.HealthCheckTimeoutSeconds)
	healthy, unhealthy := awsmodel.Value(tg.HealthyThresholdCount), awsmodel.Value(tg.UnhealthyThresholdCount)
	switch {
	case interval < 5 || interval > 300:
		return validation("Health check interval %d is not valid: it must be from 5 to 300 seconds", interval)
	case timeout < 2 || timeout > 120:
		return validation("Health check timeout %d is not valid: it must be from 2 to 120 seconds", timeout)
	case timeout >= interval:
		return validation("Health check interval must be greater than the timeout")
	case healthy < 2 || healthy > 10:
		return validation("Healthy threshold count %d is not valid: it must be from 2 to 10", healthy)
	case unhealthy < 2 || unhealthy > 10:
		return validation("Unhealthy threshold count %d is not valid: it must be from 2 to 10", unhealthy)
	}
	return checkMatcher(tg.Matcher, tg.ProtocolVersion)
}

// checkMatcher checks a matcher against the protocol version: HTTP codes
// 200-499 for HTTP1 and HTTP2, gRPC codes 0-99 for GRPC, as single codes,
// lists ("200,202") or ranges ("200-299").
func checkMatcher(m *elbv2types.Matcher, version string) error {
	if m == nil {
		return validation("A matcher must be specified")
	}
	if version == versionGRPC {
		if m.HttpCode != "" || m.GrpcCode == "" {
			return validation("Target groups with the GRPC protocol version take a gRPC code matcher (GrpcCode), not an HTTP code")
		}
		return checkCodes(m.GrpcCode, 0, 99, "gRPC code")
	}
	if m.GrpcCode != "" || m.HttpCode == "" {
		return validation("Target groups with the %s protocol version take an HTTP code matcher (HttpCode), not a gRPC code", version)
	}
	return checkCodes(m.HttpCode, 200, 499, "HTTP code")
}

func checkCodes(spec string, lo, hi int, what string) error {
	bad := func() error {
		return validation("The %s matcher '%s' is not valid: give codes from %d to %d, as a list ('200,202') or a range ('200-299')", what, spec, lo, hi)
	}
	for part := range strings.SplitSeq(spec, ",") {
		a, b, isRange := strings.Cut(strings.TrimSpace(part), "-")
		x, err := strconv.Atoi(a)
		if err != nil || x < lo || x > hi {
			return bad()
		}
		if isRange {
			y, err := strconv.Atoi(b)
			if err != nil || y < x || y > hi {
				return bad()
			}
		}
	}
	return nil
}

// CreateTargetGroup creates an HTTP or HTTPS target group of instance or ip
// targets, with ALB's health check defaults for the settings not given.
// Creating one again with the same name and settings returns it, as AWS
// does.
func (s *Service) CreateTargetGroup(ctx context.Context, in *elbv2types.CreateTargetGroupInput) (*elbv2types.CreateTargetGroupOutput, error) {
	if err := checkName(in.Name, "target group"); err != nil {
		return nil, err
	}
	targetType := in.TargetType
	if targetType == "" {
		targetType = elbv2types.TargetTypeEnumInstance
	}
	if targetType != elbv2types.TargetTypeEnumInstance && targetType != elbv2types.TargetTypeEnumIp {
		return nil, validation("Berth does not support %s targets: target groups take instance or ip targets", targetType)
	}
	switch in.Protocol {
	case elbv2types.ProtocolEnumHttp, elbv2types.ProtocolEnumHttps:
	case "":
		return nil, validation("A protocol must be specified for target groups with target type %s", targetType)
	default:
		return nil, validation("Berth provides Application Load Balancers only: target group protocol '%s' is not supported (use HTTP or HTTPS)", in.Protocol)
	}
	if in.Port == nil {
		return nil, validation("A port must be specified for target groups with target type %s", targetType)
	}
	if p := *in.Port; p < 1 || p > 65535 {
		return nil, validation("Target group port %d is not valid: it must be from 1 to 65535", p)
	}
	if p := in.TargetControlPort; p != nil && (*p < 1 || *p > 65535) {
		return nil, validation("Target control port %d is not valid: it must be from 1 to 65535", *p)
	}
	version := strings.ToUpper(in.ProtocolVersion)
	switch version {
	case "":
		version = versionHTTP1
	case versionHTTP1, versionHTTP2, versionGRPC:
	default:
		return nil, validation("Protocol version '%s' is not valid: use HTTP1, HTTP2 or GRPC", in.ProtocolVersion)
	}
	ipType := in.IpAddressType
	if ipType == "" {
		ipType = elbv2types.TargetGroupIpAddressTypeEnumIpv4
	}
	vpc := in.VpcId
	if vpc == "" {
		vpc = VPCID
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	id, err := s.newID()
	if err != nil {
		return nil, err
	}
	tg := elbv2types.TargetGroup{
		TargetGroupArn:             s.arns.TargetGroup(in.Name, id),
		TargetGroupName:            in.Name,
		Protocol:                   in.Protocol,
		Port:                       new(*in.Port),
		VpcId:                      vpc,
		HealthCheckEnabled:         new(true),
		HealthCheckProtocol:        elbv2types.ProtocolEnumHttp,
		HealthCheckPort:            defaultHealthCheckPort,
		HealthCheckPath:            defaultHealthCheckPath,
		HealthCheckIntervalSeconds: new(defaultHealthCheckInterval),
		HealthCheckTimeoutSeconds:  new(defaultHealthCheckTimeout),
		HealthyThresholdCount:      new(defaultHealthyThreshold),
		UnhealthyThresholdCount:    new(defaultUnhealthyThreshold),
		Matcher:                    &elbv2types.Matcher{HttpCode: defaultHTTPCode},
		TargetType:                 targetType,
		ProtocolVersion:            version,
		IpAddressType:              ipType,
	}
	if in.TargetControlPort != nil {
		tg.TargetControlPort = new(*in.TargetControlPort)
	}
	if version == versionGRPC {
		tg.HealthCheckPath = defaultGRPCHealthCheckPath
		tg.Matcher = &elbv2types.Matcher{GrpcCode: defaultGRPCCode}
	}
	if err := applyHealthCheck(&tg, healthCheck{
		enabled: in.HealthCheckEnabled, protocol: in.HealthCheckProtocol, port: in.HealthCheckPort, path: in.HealthCheckPath,
		interval: in.HealthCheckIntervalSeconds, timeout: in.HealthCheckTimeoutSeconds,
		healthy: in.HealthyThresholdCount, unhealthy: in.UnhealthyThresholdCount, matcher: in.Matcher,
	}); err != nil {
		return nil, err
	}
	want := &state.TargetGroup{TargetGroup: tg, ID: id, Attributes: defaults(tgAttributes), Tags: slices.Clone(in.Tags)}
	var rec *state.TargetGroup
	_, err = s.store.Update(ctx, func(tx store.Tx) error {
		old, ok, err := state.Get[state.TargetGroup](tx, state.TargetGroupKey(in.Name))
		if err != nil {
			return err
		}
		if ok {
			if !sameTargetGroup(old, want) {
				return elbv2types.NewDuplicateTargetGroupNameException("A target group with the same name '%s' exists, but with different settings", in.Name)
			}
			rec = old
			return nil
		}
		n, err := tx.Count(state.TargetGroupsPrefix)
		if err != nil {
			return err
		}
		if n >= maxTargetGroups {
			return elbv2types.NewTooManyTargetGroupsException("The maximum number of target groups (%d) has been reached", maxTargetGroups)
		}
		rec = want
		return state.Create(tx, state.TargetGroupKey(in.Name), rec)
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("target group created", "target_group", in.Name)
	return &elbv2types.CreateTargetGroupOutput{TargetGroups: []elbv2types.TargetGroup{rec.TargetGroup}}, nil
}

// sameTargetGroup reports whether a create request (b) asks for the target
// group a already is. Tags are not compared.
func sameTargetGroup(a, b *state.TargetGroup) bool {
	x, y := a.TargetGroup, b.TargetGroup
	x.TargetGroupArn, y.TargetGroupArn = "", ""
	x.LoadBalancerArns, y.LoadBalancerArns = nil, nil
	return reflect.DeepEqual(x, y)
}

// DescribeTargetGroups describes the named target groups, those a load
// balancer's rules forward to, or pages through all of them in name order.
func (s *Service) DescribeTargetGroups(ctx context.Context, in *elbv2types.DescribeTargetGroupsInput) (*elbv2types.DescribeTargetGroupsOutput, error) {
	given := 0
	for _, b := range []bool{in.LoadBalancerArn != "", len(in.TargetGroupArns) > 0, len(in.Names) > 0} {
		if b {
			given++
		}
	}
	if given > 1 {
		return nil, validation("A load balancer ARN, target group ARNs and target group names cannot be specified together")
	}
	p, err := newPage(in.PageSize, in.Marker)
	if err != nil {
		return nil, err
	}
	out := &elbv2types.DescribeTargetGroupsOutput{TargetGroups: []elbv2types.TargetGroup{}}
	err = s.store.View(ctx, func(tx store.ReadTx) error {
		switch {
		case len(in.Names) > 0:
			for _, name := range in.Names {
				tg, ok, err := state.Get[state.TargetGroup](tx, state.TargetGroupKey(name))
				if err != nil {
					return err
				}
				if !ok {
					return tgNotFound()
				}
				out.TargetGroups = append(out.TargetGroups, tg.TargetGroup)
			}
		case len(in.TargetGroupArns) > 0:
			for _, arn := range in.TargetGroupArns {
				tg, err := s.targetGroup(tx, arn)
				if err != nil {
					return err
				}
				out.TargetGroups = append(out.TargetGroups, tg.TargetGroup)
			}
		case in.LoadBalancerArn != "":
			lb, err := s.loadBalancer(tx, in.LoadBalancerArn)
			if err != nil {
				return err
			}
			tgs, err := s.groupsOf(tx, lb)
			if err != nil {
				return err
			}
			tgs, out.NextMarker = pageSlice(tgs, func(tg *state.TargetGroup) string { return tg.TargetGroupName }, p)
			for _, tg := range tgs {
				out.TargetGroups = append(out.TargetGroups, tg.TargetGroup)
			}
		default:
			out.NextMarker, err = scan(tx, state.TargetGroupsPrefix, p, func(kv store.KV) (bool, error) {
				tg, err := state.Decode[state.TargetGroup](kv)
				if err != nil {
					return false, err
				}
				out.TargetGroups = append(out.TargetGroups, tg.TargetGroup)
				return true, nil
			})
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// groupsOf returns the target groups lb's rules forward to, by name.
func (s *Service) groupsOf(tx store.ReadTx, lb *state.LoadBalancer) ([]*state.TargetGroup, error) {
	arns, err := s.lbTargetGroupArns(tx, lb, "")
	if err != nil {
		return nil, err
	}
	var out []*state.TargetGroup
	for _, arn := range arns {
		tg, err := s.targetGroup(tx, arn)
		if err != nil {
			continue // a dangling reference describes nothing
		}
		out = append(out, tg)
	}
	slices.SortFunc(out, func(a, b *state.TargetGroup) int { return strings.Compare(a.TargetGroupName, b.TargetGroupName) })
	return out, nil
}

// ModifyTargetGroup changes the health check settings given and keeps the
// others.
func (s *Service) ModifyTargetGroup(ctx context.Context, in *elbv2types.ModifyTargetGroupInput) (*elbv2types.ModifyTargetGroupOutput, error) {
	var tg *state.TargetGroup
	_, err := s.store.Update(ctx, func(tx store.Tx) error {
		var err error
		tg, err = s.targetGroup(tx, in.TargetGroupArn)
		if err != nil {
			return err
		}
		m := in.Matcher
		if m != nil && tg.Matcher != nil && m.HttpCode == "" && m.GrpcCode == "" {
			m = nil
		}
		if err := applyHealthCheck(&tg.TargetGroup, healthCheck{
			enabled: in.HealthCheckEnabled, protocol: in.HealthCheckProtocol, port: in.HealthCheckPort, path: in.HealthCheckPath,
			interval: in.HealthCheckIntervalSeconds, timeout: in.HealthCheckTimeoutSeconds,
			healthy: in.HealthyThresholdCount, unhealthy: in.UnhealthyThresholdCount, matcher: m,
		}); err != nil {
			return err
		}
		return state.Put(tx, state.TargetGroupKey(tg.TargetGroupName), tg)
	})
	if err != nil {
		return nil, err
	}
	return &elbv2types.ModifyTargetGroupOutput{TargetGroups: []elbv2types.TargetGroup{tg.TargetGroup}}, nil
}

// DeleteTargetGroup deletes a target group no listener or rule forwards
// to, with its registrations. Deleting one that does not exist succeeds:
// the operation's only error is ResourceInUse.
func (s *Service) DeleteTargetGroup(ctx context.Context, in *elbv2types.DeleteTargetGroupInput) (*elbv2types.DeleteTargetGroupOutput, error) {
	res, found, err := s.resolve(in.TargetGroupArn, state.ELBTargetGroup)
	if err != nil {
		return nil, err
	}
	if !found {
		return &elbv2types.DeleteTargetGroupOutput{}, nil
	}
	deleted := false
	_, err = s.store.Update(ctx, func(tx store.Tx) error {
		deleted = false
		tg, ok, err := state.Get[state.TargetGroup](tx, state.TargetGroupKey(res.Name))
		if err != nil || !ok || tg.ID != res.ID {
			return err
		}
		used, err := state.TargetGroupInUse(tx, tg.ID)
		if err != nil {
			return err
		}
		if used {
			return elbv2types.NewResourceInUseException("Target group '%s' is currently in use by a listener or a rule", tg.TargetGroupArn)
		}
		targets, err := state.ListTargets(tx, tg.ID)
		if err != nil {
			return err
		}
		for _, t := range targets {
			if _, err := state.RemoveTarget(tx, tg.ID, t.Target.Id, awsmodel.Value(t.Target.Port)); err != nil {
				return err
			}
		}
		deleted = true
		return tx.Delete(state.TargetGroupKey(tg.TargetGroupName))
	})
	if err != nil {
		return nil, err
	}
	if deleted {
		s.log.Info("target group deleted", "target_group_arn", in.TargetGroupArn)
	}
	return &elbv2types.DeleteTargetGroupOutput{}, nil
}
