package controller

import (
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/elbv2types"
	"github.com/berthdev/berth/internal/lb"
	"github.com/berthdev/berth/internal/state"
)

// certLoader returns the certificate an ACM-style ARN names.
type certLoader func(arn string) (*tls.Certificate, error)

// compileLoadBalancer turns one load balancer's records into the data
// plane's configuration: the load balancer with its listeners and rules,
// and the target groups they forward to (keyed by ARN, which is also their
// lb ID). A listener whose certificate cannot be loaded is left out, with
// the reason in skipped.
func compileLoadBalancer(v *state.LoadBalancerView, certs certLoader) (out lb.LoadBalancer, groups []lb.TargetGroup, skipped map[string]error) {
	rec := v.LoadBalancer
	attr := func(k string) string { return rec.Attributes[k] }
	out = lb.LoadBalancer{
		ID:                 rec.LoadBalancerArn,
		Address:            rec.Address,
		IdleTimeout:        seconds(attr("idle_timeout.timeout_seconds"), 60*time.Second),
		HTTP2:              attr("routing.http2.enabled") != "false",
		DropInvalidHeaders: attr("routing.http.drop_invalid_header_fields.enabled") == "true",
		XFFMode:            attr("routing.http.xff_header_processing.mode"),
		XFFClientPort:      attr("routing.http.xff_client_port.enabled") == "true",
	}
	for _, lv := range v.Listeners {
		l := lv.Listener
		ln := lb.Listener{ID: l.ListenerArn, Port: int(awsmodel.Value(l.Port)), Protocol: string(l.Protocol)}
		if l.Protocol == elbv2types.ProtocolEnumHttps {
			var arn string
			for _, c := range l.Certificates {
				if arn == "" || awsmodel.Value(c.IsDefault) {
					arn = c.CertificateArn
				}
			}
			cert, err := certs(arn)
			if err != nil {
				if skipped == nil {
					skipped = map[string]error{}
				}
				skipped[l.ListenerArn] = err
				continue
			}
			ln.Certificate = cert
		}
		for _, r := range lv.Rules {
			ln.Rules = append(ln.Rules, compileRule(r))
		}
		out.Listeners = append(out.Listeners, ln)
	}
	for arn, tv := range v.TargetGroups {
		groups = append(groups, compileTargetGroup(arn, tv))
	}
	return out, groups, skipped
}

func compileRule(r *state.Rule) lb.Rule {
	out := lb.Rule{ID: r.RuleArn, Priority: r.PriorityValue(), IsDefault: awsmodel.Value(r.IsDefault)}
	for _, c := range r.Conditions {
		out.Conditions = append(out.Conditions, compileCondition(c))
	}
	// ALB runs a rule's actions in Order; with only forward, redirect and
	// fixed-response (authentication actions are refused), the last one
	// decides.
	var last *elbv2types.Action
	for i := range r.Actions {
		if last == nil || awsmodel.Value(r.Actions[i].Order) >= awsmodel.Value(last.Order) {
			last = &r.Actions[i]
		}
	}
	if last != nil {
		out.Action = compileAction(*last)
	}
	return out
}

func compileCondition(c elbv2types.RuleCondition) lb.Condition {
	out := lb.Condition{Field: c.Field, Values: c.Values, RegexValues: c.RegexValues}
	switch c.Field {
	case lb.FieldHostHeader:
		if cfg := c.HostHeaderConfig; cfg != nil {
			out.Values, out.RegexValues = append(out.Values, cfg.Values...), append(out.RegexValues, cfg.RegexValues...)
		}
	case lb.FieldPathPattern:
		if cfg := c.PathPatternConfig; cfg != nil {
			out.Values, out.RegexValues = append(out.Values, cfg.Values...), append(out.RegexValues, cfg.RegexValues...)
		}
	case lb.FieldHTTPHeader:
		if cfg := c.HttpHeaderConfig; cfg != nil {
			out.HeaderName = cfg.HttpHeaderName
			out.Values, out.RegexValues = append(out.Values, cfg.Values...), append(out.RegexValues, cfg.RegexValues...)
		}
	case lb.FieldHTTPRequestMethod:
		if cfg := c.HttpRequestMethodConfig; cfg != nil {
			out.Values = append(out.Values, cfg.Values...)
		}
	case lb.FieldSourceIP:
		if cfg := c.SourceIpConfig; cfg != nil {
			out.Values = append(out.Values, cfg.Values...)
		}
	case lb.FieldQueryString:
		if cfg := c.QueryStringConfig; cfg != nil {
			for _, kv := range cfg.Values {
				out.Query = append(out.Query, lb.QueryPair{Key: kv.Key, Value: kv.Value})
			}
		}
	}
	return out
}

func compileAction(a elbv2types.Action) lb.Action {
	switch a.Type {
	case elbv2types.ActionTypeEnumRedirect:
		rc := a.RedirectConfig
		if rc == nil {
			rc = &elbv2types.RedirectActionConfig{}
		}
		code := 302
		if rc.StatusCode == elbv2types.RedirectActionStatusCodeEnumHttp_301 {
			code = 301
		}
		return lb.Action{Type: lb.ActionRedirect, Redirect: &lb.Redirect{
			Protocol: rc.Protocol, Host: rc.Host, Port: rc.Port, Path: rc.Path, Query: rc.Query, StatusCode: code,
		}}
	case elbv2types.ActionTypeEnumFixedResponse:
		fr := a.FixedResponseConfig
		if fr == nil {
			fr = &elbv2types.FixedResponseActionConfig{}
		}
		code, _ := strconv.Atoi(fr.StatusCode)
		return lb.Action{Type: lb.ActionFixedResponse, Fixed: &lb.FixedResponse{StatusCode: code, ContentType: fr.ContentType, Body: fr.MessageBody}}
	}
	out := lb.Action{Type: lb.ActionForward}
	if a.ForwardConfig != nil && len(a.ForwardConfig.TargetGroups) > 0 {
		for _, t := range a.ForwardConfig.TargetGroups {
			w := 1
			if t.Weight != nil {
				w = int(*t.Weight)
			}
			out.Forward = append(out.Forward, lb.WeightedGroup{TargetGroupID: t.TargetGroupArn, Weight: w})
		}
		if sc := a.ForwardConfig.TargetGroupStickinessConfig; sc != nil && awsmodel.Value(sc.Enabled) {
			out.GroupStickiness = time.Duration(awsmodel.Value(sc.DurationSeconds)) * time.Second
		}
	} else if a.TargetGroupArn != "" {
		out.Forward = []lb.WeightedGroup{{TargetGroupID: a.TargetGroupArn, Weight: 1}}
	}
	return out
}

func compileTargetGroup(arn string, tv *state.TargetGroupView) lb.TargetGroup {
	tg := tv.TargetGroup
	attr := func(k string) string { return tg.Attributes[k] }
	hc := lb.HealthCheck{
		Disabled:           tg.HealthCheckEnabled != nil && !*tg.HealthCheckEnabled,
		Protocol:           string(tg.HealthCheckProtocol),
		Path:               tg.HealthCheckPath,
		Port:               tg.HealthCheckPort,
		Interval:           time.Duration(awsmodel.Value(tg.HealthCheckIntervalSeconds)) * time.Second,
		Timeout:            time.Duration(awsmodel.Value(tg.HealthCheckTimeoutSeconds)) * time.Second,
		HealthyThreshold:   int(awsmodel.Value(tg.HealthyThresholdCount)),
		UnhealthyThreshold: int(awsmodel.Value(tg.UnhealthyThresholdCount)),
	}
	if tg.Matcher != nil {
		hc.Matcher = tg.Matcher.HttpCode
	}
	out := lb.TargetGroup{
		ID:              arn,
		Protocol:        string(tg.Protocol),
		ProtocolVersion: tg.ProtocolVersion,
		Algorithm:       attr("load_balancing.algorithm.type"),
		SlowStart:       seconds(attr("slow_start.duration_seconds"), 0),
		HealthCheck:     hc,
	}
	if attr("stickiness.enabled") == "true" {
		st := lb.Stickiness{Enabled: true, Type: attr("stickiness.type"), Duration: seconds(attr("stickiness.lb_cookie.duration_seconds"), 0)}
		if st.Type == lb.StickinessAppCookie {
			st.CookieName, st.Duration = attr("stickiness.app_cookie.cookie_name"), seconds(attr("stickiness.app_cookie.duration_seconds"), 0)
		}
		out.Stickiness = st
	}
	for _, t := range tv.Targets {
		port := awsmodel.Value(t.Target.Port)
		lt := lb.Target{ID: state.TargetName(t.Target.Id, port), Addr: net.JoinHostPort(t.Address, strconv.Itoa(int(port)))}
		if t.DrainUntil != nil {
			lt.Draining, lt.DrainUntil = true, t.DrainUntil.Time
		}
		out.Targets = append(out.Targets, lt)
	}
	return out
}

// seconds parses an attribute holding whole seconds, or returns def.
func seconds(v string, def time.Duration) time.Duration {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return def
	}
	return time.Duration(n) * time.Second
}

// loadCertificate reads the PEM pair an ACM-style certificate ARN names in
// dir (state.CertificateFiles).
func loadCertificate(arns state.ARNs, dir string) certLoader {
	return func(arn string) (*tls.Certificate, error) {
		name, ok := arns.CertificateName(arn)
		if !ok {
			return nil, fmt.Errorf("certificate %q is not one Berth knows", arn)
		}
		certFile, keyFile := state.CertificateFiles(dir, name)
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("certificate %s: %w", arn, err)
		}
		return &c, nil
	}
}
