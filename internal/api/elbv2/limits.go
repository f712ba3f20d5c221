package elbv2

import (
	"context"
	"slices"
	"strconv"

	"github.com/berthdev/berth/internal/awsmodel/elbv2types"
)

// tls12Ciphers are the ECDHE and RSA ciphers of the TLS 1.2 policies, in
// priority order.
var tls12Ciphers = []string{
	"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
	"ECDHE-ECDSA-AES128-SHA256", "ECDHE-RSA-AES128-SHA256",
	"ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
	"ECDHE-ECDSA-AES256-SHA384", "ECDHE-RSA-AES256-SHA384",
}

var tls13Ciphers = []string{"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}

func ciphers(groups ...[]string) []elbv2types.Cipher {
	var out []elbv2types.Cipher
	for _, g := range groups {
		for _, name := range g {
			out = append(out, elbv2types.Cipher{Name: name, Priority: new(int32(len(out) + 1))})
		}
	}
	return out
}

// sslPolicies are the security policies Berth offers, a few of AWS's
// predefined ones with their protocols and ciphers. The data plane maps
// each to Go's crypto/tls by its lowest protocol version; Go chooses the
// TLS 1.3 suites itself.
var sslPolicies = []elbv2types.SslPolicy{
	{
		Name:         "ELBSecurityPolicy-2016-08",
		SslProtocols: []string{"TLSv1", "TLSv1.1", "TLSv1.2"},
		Ciphers: ciphers(
			[]string{"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-SHA256", "ECDHE-RSA-AES128-SHA256",
				"ECDHE-ECDSA-AES128-SHA", "ECDHE-RSA-AES128-SHA", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
				"ECDHE-ECDSA-AES256-SHA384", "ECDHE-RSA-AES256-SHA384", "ECDHE-RSA-AES256-SHA", "ECDHE-ECDSA-AES256-SHA",
				"AES128-GCM-SHA256", "AES128-SHA256", "AES128-SHA", "AES256-GCM-SHA384", "AES256-SHA256", "AES256-SHA"}),
		SupportedLoadBalancerTypes: []string{"application", "network"},
	},
	{
		Name:                       "ELBSecurityPolicy-TLS-1-2-2017-01",
		SslProtocols:               []string{"TLSv1.2"},
		Ciphers:                    ciphers(tls12Ciphers, []string{"AES128-GCM-SHA256", "AES128-SHA256", "AES256-GCM-SHA384", "AES256-SHA256"}),
		SupportedLoadBalancerTypes: []string{"application", "network"},
	},
	{
		Name:                       "ELBSecurityPolicy-TLS13-1-2-2021-06",
		SslProtocols:               []string{"TLSv1.2", "TLSv1.3"},
		Ciphers:                    ciphers(tls13Ciphers, tls12Ciphers),
		SupportedLoadBalancerTypes: []string{"application", "network"},
	},
	{
		Name:                       "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
		SslProtocols:               []string{"TLSv1.2", "TLSv1.3"},
		Ciphers:                    ciphers(tls13Ciphers, []string{"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384"}),
		SupportedLoadBalancerTypes: []string{"application", "network"},
	},
	{
		Name:                       "ELBSecurityPolicy-TLS13-1-3-2021-06",
		SslProtocols:               []string{"TLSv1.3"},
		Ciphers:                    ciphers(tls13Ciphers),
		SupportedLoadBalancerTypes: []string{"application", "network"},
	},
}

// LookupSSLPolicy returns the security policy named name.
func LookupSSLPolicy(name string) (elbv2types.SslPolicy, bool) {
	i := slices.IndexFunc(sslPolicies, func(p elbv2types.SslPolicy) bool { return p.Name == name })
	if i < 0 {
		return elbv2types.SslPolicy{}, false
	}
	return sslPolicies[i], true
}

// DescribeSSLPolicies describes the named security policies, or all of
// them (for Application Load Balancers: none for gateway ones).
func (s *Service) DescribeSSLPolicies(_ context.Context, in *elbv2types.DescribeSSLPoliciesInput) (*elbv2types.DescribeSSLPoliciesOutput, error) {
	p, err := newPage(in.PageSize, in.Marker)
	if err != nil {
		return nil, err
	}
	var list []elbv2types.SslPolicy
	if len(in.Names) > 0 {
		for _, name := range in.Names {
			pol, ok := LookupSSLPolicy(name)
			if !ok {
				return nil, elbv2types.NewSSLPolicyNotFoundException("One or more SSL policies not found: %s", name)
			}
			list = append(list, pol)
		}
	} else if in.LoadBalancerType != elbv2types.LoadBalancerTypeEnumGateway {
		list = slices.Clone(sslPolicies)
	}
	list, next := pageSlice(list, func(p elbv2types.SslPolicy) string { return p.Name }, p)
	if list == nil {
		list = []elbv2types.SslPolicy{}
	}
	return &elbv2types.DescribeSSLPoliciesOutput{SslPolicies: list, NextMarker: next}, nil
}

// accountLimits are AWS's default quotas for Application Load Balancers,
// which Berth enforces (targets per load balancer excepted: Berth counts
// targets per target group).
var accountLimits = []struct {
	name string
	max  int
}{
	{"application-load-balancers", maxLoadBalancers},
	{"condition-values-per-alb-rule", maxConditionValues},
	{"condition-wildcards-per-alb-rule", maxWildcards},
	{"listeners-per-application-load-balancer", maxListenersPerLB},
	{"rules-per-application-load-balancer", maxRulesPerLB},
	{"target-groups", maxTargetGroups},
	{"target-groups-per-action-on-application-load-balancer", maxTargetGroupsPerAction},
	{"target-groups-per-application-load-balancer", maxTargetGroupsPerLB},
	{"targets-per-application-load-balancer", maxTargetsPerGroup},
}

// DescribeAccountLimits lists the Application Load Balancer quotas.
func (s *Service) DescribeAccountLimits(_ context.Context, in *elbv2types.DescribeAccountLimitsInput) (*elbv2types.DescribeAccountLimitsOutput, error) {
	p, err := newPage(in.PageSize, in.Marker)
	if err != nil {
		return nil, err
	}
	var all []elbv2types.Limit
	for _, l := range accountLimits {
		all = append(all, elbv2types.Limit{Name: l.name, Max: strconv.Itoa(l.max)})
	}
	list, next := pageSlice(all, func(l elbv2types.Limit) string { return l.Name }, p)
	return &elbv2types.DescribeAccountLimitsOutput{Limits: list, NextMarker: next}, nil
}
