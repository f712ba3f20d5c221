package elbv2

import (
	"cmp"
	"context"
	"crypto/tls"
	"reflect"
	"slices"
	"strconv"

	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/elbv2types"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// DefaultSSLPolicy is the security policy of an HTTPS listener created
// without one through the API, as AWS's.
const DefaultSSLPolicy = "ELBSecurityPolicy-2016-08"

// checkCertificate checks that a certificate ARN names a PEM pair Berth
// can load (Config.CertificateDir).
func (s *Service) checkCertificate(arn string) error {
	name, ok := s.arns.CertificateName(arn)
	if !ok {
		return elbv2types.NewCertificateNotFoundException("Certificate '%s' not found: Berth's certificate ARNs are %s", arn, s.arns.Certificate("<name>"))
	}
	if s.certDir == "" {
		return elbv2types.NewCertificateNotFoundException("Certificate '%s' not found: no certificate directory is configured", arn)
	}
	certFile, keyFile := state.CertificateFiles(s.certDir, name)
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		return elbv2types.NewCertificateNotFoundException("Certificate '%s' not found: %s and %s do not hold a PEM certificate and its key", arn, certFile, keyFile)
	}
	return nil
}

// tlsSettings checks the TLS settings of an HTTPS listener: exactly one
// certificate that exists and a known security policy (the default when
// none is given). An HTTP listener has neither.
func (s *Service) tlsSettings(proto elbv2types.ProtocolEnum, certs []elbv2types.Certificate, policy string) ([]elbv2types.Certificate, string, error) {
	if proto != elbv2types.ProtocolEnumHttps {
		if len(certs) > 0 || policy != "" {
			return nil, "", validation("Certificates and an SSL policy can be specified only for HTTPS listeners")
		}
		return nil, "", nil
	}
	if len(certs) != 1 || certs[0].CertificateArn == "" {
		return nil, "", validation("An HTTPS listener must have exactly one certificate (Certificates[0].CertificateArn)")
	}
	if err := s.checkCertificate(certs[0].CertificateArn); err != nil {
		return nil, "", err
	}
	if policy == "" {
		policy = DefaultSSLPolicy
	}
	if _, ok := LookupSSLPolicy(policy); !ok {
		return nil, "", elbv2types.NewSSLPolicyNotFoundException("SSL policy '%s' not found", policy)
	}
	return []elbv2types.Certificate{{CertificateArn: certs[0].CertificateArn}}, policy, nil
}

// checkListenerOptions refuses what only Network Load Balancers or
// mutual TLS take.
func checkListenerOptions(alpn []string, mtls *elbv2types.MutualAuthenticationAttributes) error {
	if len(alpn) > 0 {
		return validation("ALPN policies apply to TLS listeners of Network Load Balancers only")
	}
	if mtls != nil && mtls.Mode != "" && mtls.Mode != "off" {
		return validation("Berth does not support mutual TLS authentication (mode '%s')", mtls.Mode)
	}
	return nil
}

func checkProtocol(proto elbv2types.ProtocolEnum) error {
	switch proto {
	case elbv2types.ProtocolEnumHttp, elbv2types.ProtocolEnumHttps:
		return nil
	case "":
		return validation("A listener protocol must be specified")
	}
	return validation("Listener protocol '%s' must be one of 'HTTPS, HTTP'", proto)
}

// CreateListener creates a listener with its default rule. The data plane
// binds it on the load balancer's loopback address. Creating one again on
// the same port with the same settings returns it, as AWS does.
func (s *Service) CreateListener(ctx context.Context, in *elbv2types.CreateListenerInput) (*elbv2types.CreateListenerOutput, error) {
	if err := checkProtocol(in.Protocol); err != nil {
		return nil, err
	}
	if in.Port == nil {
		return nil, validation("A listener port must be specified")
	}
	port := *in.Port
	if port < 1 || port > 65535 {
		return nil, validation("Listener port %d is not valid: it must be from 1 to 65535", port)
	}
	if err := checkListenerOptions(in.AlpnPolicy, in.MutualAuthentication); err != nil {
		return nil, err
	}
	certs, policy, err := s.tlsSettings(in.Protocol, in.Certificates, in.SslPolicy)
	if err != nil {
		return nil, err
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	id, err := s.newID()
	if err != nil {
		return nil, err
	}
	ruleID, err := s.newID()
	if err != nil {
		return nil, err
	}
	var rec *state.Listener
	_, err = s.store.Update(ctx, func(tx store.Tx) error {
		lb, err := s.loadBalancer(tx, in.LoadBalancerArn)
		if err != nil {
			return err
		}
		actions, err := s.checkActions(tx, lb, in.Protocol, "", in.DefaultActions)
		if err != nil {
			return err
		}
		want := &state.Listener{
			Listener: elbv2types.Listener{
				ListenerArn:     s.arns.Listener(lb.LoadBalancerName, lb.ID, id),
				LoadBalancerArn: lb.LoadBalancerArn,
				Port:            new(port),
				Protocol:        in.Protocol,
				Certificates:    certs,
				SslPolicy:       policy,
				DefaultActions:  actions,
			},
			ID:             id,
			LoadBalancerID: lb.ID,
			DefaultRuleArn: s.arns.ListenerRule(lb.LoadBalancerName, lb.ID, id, ruleID),
			Tags:           slices.Clone(in.Tags),
		}
		rec = want
		listeners, err := s.listenersOf(tx, lb)
		if err != nil {
			return err
		}
		for _, l := range listeners {
			if awsmodel.Value(l.Port) != port {
				continue
			}
			if !sameListener(l, want) {
				return elbv2types.NewDuplicateListenerException("A listener already exists on port %d of load balancer '%s'", port, lb.LoadBalancerArn)
			}
			rec = l
			return nil
		}
		if len(listeners) >= maxListenersPerLB {
			return elbv2types.NewTooManyListenersException("A load balancer can have at most %d listeners", maxListenersPerLB)
		}
		def := &state.Rule{
			Rule: elbv2types.Rule{
				RuleArn:    rec.DefaultRuleArn,
				Priority:   "default",
				Conditions: []elbv2types.RuleCondition{},
				Actions:    actions,
				IsDefault:  new(true),
			},
			ID: ruleID, ListenerArn: rec.ListenerArn, LoadBalancerArn: lb.LoadBalancerArn,
		}
		if err := state.Create(tx, state.RuleKey(id, ruleID), def); err != nil {
			return err
		}
		if err := s.setRefs(tx, ruleID, lb.LoadBalancerArn, nil, state.ForwardTargetGroups(actions)); err != nil {
			return err
		}
		return state.Create(tx, state.ListenerKey(lb.ID, id), rec)
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("listener created", "listener_arn", rec.ListenerArn, "port", awsmodel.Value(rec.Port))
	return &elbv2types.CreateListenerOutput{Listeners: []elbv2types.Listener{rec.Listener}}, nil
}

// sameListener reports whether a create request (b) asks for the listener
// a already is. Tags are not compared.
func sameListener(a, b *state.Listener) bool {
	x, y := a.Listener, b.Listener
	x.ListenerArn, y.ListenerArn = "", ""
	return reflect.DeepEqual(x, y)
}

// listenersOf returns lb's listeners by port.
func (s *Service) listenersOf(tx store.ReadTx, lb *state.LoadBalancer) ([]*state.Listener, error) {
	kvs, err := tx.List(state.ListenersLBPrefix(lb.ID), "", 0)
	if err != nil {
		return nil, err
	}
	out := make([]*state.Listener, 0, len(kvs))
	for _, kv := range kvs {
		l, err := state.Decode[state.Listener](kv)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b *state.Listener) int { return cmp.Compare(awsmodel.Value(a.Port), awsmodel.Value(b.Port)) })
	return out, nil
}

// DescribeListeners describes the named listeners, or a load balancer's in
// port order.
func (s *Service) DescribeListeners(ctx context.Context, in *elbv2types.DescribeListenersInput) (*elbv2types.DescribeListenersOutput, error) {
	if (in.LoadBalancerArn == "") == (len(in.ListenerArns) == 0) {
		return nil, validation("You must specify either listener ARNs or a load balancer ARN, not both")
	}
	p, err := newPage(in.PageSize, in.Marker)
	if err != nil {
		return nil, err
	}
	out := &elbv2types.DescribeListenersOutput{Listeners: []elbv2types.Listener{}}
	err = s.store.View(ctx, func(tx store.ReadTx) error {
		if len(in.ListenerArns) > 0 {
			for _, arn := range in.ListenerArns {
				l, err := s.listener(tx, arn)
				if err != nil {
					return err
				}
				out.Listeners = append(out.Listeners, l.Listener)
			}
			return nil
		}
		lb, err := s.loadBalancer(tx, in.LoadBalancerArn)
		if err != nil {
			return err
		}
		ls, err := s.listenersOf(tx, lb)
		if err != nil {
			return err
		}
		ls, out.NextMarker = pageSlice(ls, portKey, p)
		for _, l := range ls {
			out.Listeners = append(out.Listeners, l.Listener)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// portKey orders listeners in markers: the port, zero-padded.
func portKey(l *state.Listener) string {
	return strconv.Itoa(100000 + int(awsmodel.Value(l.Port)))
}

// ModifyListener replaces the given properties of a listener (port,
// protocol, certificate, security policy, default actions) and keeps the
// others. A listener turned from HTTPS to HTTP drops its certificate and
// policy.
func (s *Service) ModifyListener(ctx context.Context, in *elbv2types.ModifyListenerInput) (*elbv2types.ModifyListenerOutput, error) {
	if in.Protocol != "" {
		if err := checkProtocol(in.Protocol); err != nil {
			return nil, err
		}
	}
	if in.Port != nil && (*in.Port < 1 || *in.Port > 65535) {
		return nil, validation("Listener port %d is not valid: it must be from 1 to 65535", *in.Port)
	}
	if err := checkListenerOptions(in.AlpnPolicy, in.MutualAuthentication); err != nil {
		return nil, err
	}
	// The certificate files are read outside the transaction, which may
	// run more than once.
	if len(in.Certificates) > 0 {
		if len(in.Certificates) != 1 {
			return nil, validation("A listener has exactly one default certificate")
		}
		if err := s.checkCertificate(in.Certificates[0].CertificateArn); err != nil {
			return nil, err
		}
	}
	var rec *state.Listener
	_, err := s.store.Update(ctx, func(tx store.Tx) error {
		l, err := s.listener(tx, in.ListenerArn)
		if err != nil {
			return err
		}
		lb, err := s.loadBalancerOf(tx, l)
		if err != nil {
			return err
		}
		if in.Port != nil && *in.Port != awsmodel.Value(l.Port) {
			listeners, err := s.listenersOf(tx, lb)
			if err != nil {
				return err
			}
			for _, o := range listeners {
				if awsmodel.Value(o.Port) == *in.Port {
					return elbv2types.NewDuplicateListenerException("A listener already exists on port %d of load balancer '%s'", *in.Port, lb.LoadBalancerArn)
				}
			}
			l.Port = new(*in.Port)
		}
		if in.Protocol != "" {
			l.Protocol = in.Protocol
		}
		certs, policy := l.Certificates, l.SslPolicy
		if len(in.Certificates) > 0 {
			certs = in.Certificates
		}
		if in.SslPolicy != "" {
			policy = in.SslPolicy
		}
		if l.Protocol == elbv2types.ProtocolEnumHttp {
			if len(in.Certificates) > 0 || in.SslPolicy != "" {
				return validation("Certificates and an SSL policy can be specified only for HTTPS listeners")
			}
			l.Certificates, l.SslPolicy = nil, ""
		} else {
			if len(certs) != 1 || certs[0].CertificateArn == "" {
				return validation("An HTTPS listener must have exactly one certificate (Certificates[0].CertificateArn)")
			}
			if policy == "" {
				policy = DefaultSSLPolicy
			}
			if _, ok := LookupSSLPolicy(policy); !ok {
				return elbv2types.NewSSLPolicyNotFoundException("SSL policy '%s' not found", policy)
			}
			l.Certificates, l.SslPolicy = []elbv2types.Certificate{{CertificateArn: certs[0].CertificateArn}}, policy
		}
		def, err := s.rule(tx, l.DefaultRuleArn)
		if err != nil {
			return err
		}
		actions := l.DefaultActions
		if len(in.DefaultActions) > 0 {
			actions, err = s.checkActions(tx, lb, l.Protocol, def.ID, in.DefaultActions)
		} else if in.Protocol != "" {
			// A new protocol may forbid what the actions redirect to.
			actions, err = s.checkActions(tx, lb, l.Protocol, def.ID, l.DefaultActions)
		}
		if err != nil {
			return err
		}
		if err := s.replaceActions(tx, def, actions); err != nil {
			return err
		}
		l.DefaultActions = actions
		rec = l
		return state.Put(tx, state.ListenerKey(l.LoadBalancerID, l.ID), l)
	})
	if err != nil {
		return nil, err
	}
	return &elbv2types.ModifyListenerOutput{Listeners: []elbv2types.Listener{rec.Listener}}, nil
}

// replaceActions gives rule r new actions and moves its target group
// references.
func (s *Service) replaceActions(tx store.Tx, r *state.Rule, actions []elbv2types.Action) error {
	if err := s.setRefs(tx, r.ID, r.LoadBalancerArn, state.ForwardTargetGroups(r.Actions), state.ForwardTargetGroups(actions)); err != nil {
		return err
	}
	r.Actions = actions
	res, _ := s.arns.ParseELB(r.RuleArn)
	return state.Put(tx, state.RuleKey(res.ListenerID, r.ID), r)
}

// DeleteListener deletes a listener with its rules.
func (s *Service) DeleteListener(ctx context.Context, in *elbv2types.DeleteListenerInput) (*elbv2types.DeleteListenerOutput, error) {
	_, err := s.store.Update(ctx, func(tx store.Tx) error {
		l, err := s.listener(tx, in.ListenerArn)
		if err != nil {
			return err
		}
		return s.deleteListener(tx, l)
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("listener deleted", "listener_arn", in.ListenerArn)
	return &elbv2types.DeleteListenerOutput{}, nil
}

// deleteListener deletes l, its rules and their target group references.
func (s *Service) deleteListener(tx store.Tx, l *state.Listener) error {
	rules, err := state.ListRules(tx, l.ID)
	if err != nil {
		return err
	}
	for _, r := range rules {
		if err := s.setRefs(tx, r.ID, r.LoadBalancerArn, state.ForwardTargetGroups(r.Actions), nil); err != nil {
			return err
		}
		if err := tx.Delete(state.RuleKey(l.ID, r.ID)); err != nil {
			return err
		}
	}
	return tx.Delete(state.ListenerKey(l.LoadBalancerID, l.ID))
}
