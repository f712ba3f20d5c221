package elbv2

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/berthdev/berth/internal/awsmodel/elbv2types"
	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// ELB's load balancer limits (AWS's defaults, "Quotas for your Application
// Load Balancers").
const (
	maxLoadBalancers         = 50
	maxListenersPerLB        = 50
	maxRulesPerLB            = 100 // not counting default rules
	maxTargetGroupsPerLB     = 100
	maxTargetGroups          = 3000
	maxTargetGroupsPerAction = 5
	maxTargetsPerGroup       = 1000
	maxNameLen               = 32
)

// DNSSuffix ends every load balancer's DNS name:
// <name>-<10 digits>.<region>.elb.berth.internal, with "internal-" in front
// for an internal one, as AWS names them under elb.amazonaws.com. The
// wiring maps each name to the load balancer's loopback address.
const DNSSuffix = "elb.berth.internal"

// VPCID is the VPC every load balancer and target group reports when none
// was given: Berth has no VPCs.
const VPCID = "vpc-berth"

// hostedZones are AWS's Route 53 hosted zone ids of Application Load
// Balancers by region (CanonicalHostedZoneId); other regions get
// us-east-1's.
var hostedZones = map[string]string{
	"us-east-1": "Z35SXDOTRQ7X7K",
	"us-east-2": "Z3AADJGX6KTTL2",
	"us-west-1": "Z368ELLRRE2KJ0",
	"us-west-2": "Z1H1FL5HABSF5",
	"eu-west-1": "Z32O12XQLNTSW2",
}

// checkName applies ELB's naming rules for load balancers and target
// groups: 1 to 32 alphanumeric characters or hyphens, not beginning or
// ending with a hyphen.
func checkName(name, what string) error {
	switch {
	case name == "":
		return validation("A %s name must be specified", what)
	case len(name) > maxNameLen:
		return validation("The %s name '%s' cannot be longer than %d characters", what, name, maxNameLen)
	case strings.HasPrefix(name, "-") || strings.HasSuffix(name, "-"):
		return validation("The %s name '%s' cannot begin or end with a hyphen", what, name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return validation("The %s name '%s' can contain only alphanumeric characters and hyphens", what, name)
		}
	}
	return nil
}

// zones are the Availability Zones Berth reports for a load balancer: one
// per subnet given, named after the region in order (us-east-1a, 1b, …), or
// two made-up ones when none was given. Berth has no zones; they are echoed
// so tools that read them find what they expect.
func (s *Service) zones(subnets []elbv2types.SubnetMapping) []elbv2types.AvailabilityZone {
	if len(subnets) == 0 {
		subnets = []elbv2types.SubnetMapping{{SubnetId: "subnet-berth-a"}, {SubnetId: "subnet-berth-b"}}
	}
	out := make([]elbv2types.AvailabilityZone, len(subnets))
	for i, m := range subnets {
		out[i] = elbv2types.AvailabilityZone{ZoneName: s.region + string(rune('a'+i%26)), SubnetId: m.SubnetId}
	}
	return out
}

// CreateLoadBalancer creates an Application Load Balancer in state
// provisioning with a loopback address of its own; the data plane makes it
// active once its listeners can be bound. Creating one again with the same
// name and settings returns it, as AWS does.
func (s *Service) CreateLoadBalancer(ctx context.Context, in *elbv2types.CreateLoadBalancerInput) (*elbv2types.CreateLoadBalancerOutput, error) {
	typ := in.Type
	if typ == "" {
		typ = elbv2types.LoadBalancerTypeEnumApplication
	}
	if typ != elbv2types.LoadBalancerTypeEnumApplication {
		return nil, validation("Berth provides Application Load Balancers only: load balancer type '%s' is not supported", typ)
	}
	if err := checkName(in.Name, "load balancer"); err != nil {
		return nil, err
	}
	if strings.HasPrefix(in.Name, "internal-") {
		return nil, validation("The load balancer name '%s' cannot begin with 'internal-'", in.Name)
	}
	scheme := in.Scheme
	if scheme == "" {
		scheme = elbv2types.LoadBalancerSchemeEnumInternetFacing
	}
	ipType := in.IpAddressType
	if ipType == "" {
		ipType = elbv2types.IpAddressTypeIpv4
	}
	if scheme == elbv2types.LoadBalancerSchemeEnumInternal && ipType == elbv2types.IpAddressTypeDualstackWithoutPublicIpv4 {
		return nil, validation("Internal load balancers cannot use IP address type '%s'", ipType)
	}
	switch {
	case in.CustomerOwnedIpv4Pool != "":
		return nil, validation("Berth does not support customer-owned IP address pools (Outposts)")
	case in.EnablePrefixForIpv6SourceNat != "":
		return nil, validation("EnablePrefixForIpv6SourceNat applies to Network Load Balancers only")
	}
	subnets, err := subnetMappings(in.Subnets, in.SubnetMappings)
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
	dnsID, err := s.newDNSID()
	if err != nil {
		return nil, err
	}
	dns := in.Name + "-" + dnsID + "." + s.region + "." + DNSSuffix
	if scheme == elbv2types.LoadBalancerSchemeEnumInternal {
		dns = "internal-" + dns
	}
	zone := hostedZones[s.region]
	if zone == "" {
		zone = hostedZones["us-east-1"]
	}
	want := &state.LoadBalancer{
		LoadBalancer: elbv2types.LoadBalancer{
			LoadBalancerArn:       s.arns.LoadBalancer(in.Name, id),
			DNSName:               dns,
			CanonicalHostedZoneId: zone,
			CreatedTime:           timePtr(s.now()),
			LoadBalancerName:      in.Name,
			Scheme:                scheme,
			VpcId:                 VPCID,
			State:                 &elbv2types.LoadBalancerState{Code: elbv2types.LoadBalancerStateEnumProvisioning},
			Type:                  typ,
			AvailabilityZones:     s.zones(subnets),
			SecurityGroups:        slices.Clone(in.SecurityGroups),
			IpAddressType:         ipType,
			IpamPools:             in.IpamPools,
		},
		ID:         id,
		Attributes: lbAttributeDefaults(scheme),
		Tags:       slices.Clone(in.Tags),
	}
	var rec *state.LoadBalancer
	_, err = s.store.Update(ctx, func(tx store.Tx) error {
		old, ok, err := state.Get[state.LoadBalancer](tx, state.LoadBalancerKey(in.Name))
		if err != nil {
			return err
		}
		if ok {
			if !sameLoadBalancer(old, want) {
				return elbv2types.NewDuplicateLoadBalancerNameException("A load balancer with the same name '%s' exists, but with different settings", in.Name)
			}
			rec = old
			return nil
		}
		n, err := tx.Count(state.LoadBalancersPrefix)
		if err != nil {
			return err
		}
		if n >= maxLoadBalancers {
			return elbv2types.NewTooManyLoadBalancersException("The maximum number of load balancers (%d) has been reached", maxLoadBalancers)
		}
		addr, err := state.AllocateLoopback(tx, in.Name)
		if errors.Is(err, errdefs.ErrFailedPrecondition) {
			return elbv2types.NewTooManyLoadBalancersException("%s", err.Error())
		}
		if err != nil {
			return err
		}
		created := *want
		created.Address = addr
		rec = &created
		return state.Create(tx, state.LoadBalancerKey(in.Name), rec)
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("load balancer created", "load_balancer", in.Name, "address", rec.Address)
	return &elbv2types.CreateLoadBalancerOutput{LoadBalancers: []elbv2types.LoadBalancer{rec.LoadBalancer}}, nil
}

// subnetMappings merges Subnets and SubnetMappings (only one may be
// given): Application Load Balancers take neither Elastic IPs nor fixed
// addresses.
func subnetMappings(subnets []string, mappings []elbv2types.SubnetMapping) ([]elbv2types.SubnetMapping, error) {
	if len(subnets) > 0 && len(mappings) > 0 {
		return nil, validation("You can specify subnets or subnet mappings, not both")
	}
	out := slices.Clone(mappings)
	for _, id := range subnets {
		out = append(out, elbv2types.SubnetMapping{SubnetId: id})
	}
	seen := map[string]bool{}
	for _, m := range out {
		switch {
		case m.SubnetId == "":
			return nil, validation("A subnet ID must be specified")
		case m.AllocationId != "" || m.PrivateIPv4Address != "" || m.IPv6Address != "" || m.SourceNatIpv6Prefix != "":
			return nil, validation("Application Load Balancers do not support Elastic IP addresses, private IPv4 addresses, IPv6 addresses or source NAT prefixes in subnet mappings")
		case seen[m.SubnetId]:
			return nil, validation("Subnet '%s' was specified more than once", m.SubnetId)
		}
		seen[m.SubnetId] = true
	}
	return out, nil
}

// sameLoadBalancer reports whether a create request (b) asks for the
// load balancer a already is: AWS's test for an idempotent create. Tags
// are not compared.
func sameLoadBalancer(a, b *state.LoadBalancer) bool {
	subnets := func(lb *state.LoadBalancer) []string {
		var ids []string
		for _, z := range lb.AvailabilityZones {
			ids = append(ids, z.SubnetId)
		}
		slices.Sort(ids)
		return ids
	}
	sorted := func(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }
	return a.Scheme == b.Scheme && a.Type == b.Type && a.IpAddressType == b.IpAddressType &&
		slices.Equal(subnets(a), subnets(b)) && slices.Equal(sorted(a.SecurityGroups), sorted(b.SecurityGroups))
}

// maxDescribeARNs is how many ARNs a Describe call may name.
const maxDescribeARNs = 20

// DescribeLoadBalancers describes the named load balancers, or pages
// through all of them in name order.
func (s *Service) DescribeLoadBalancers(ctx context.Context, in *elbv2types.DescribeLoadBalancersInput) (*elbv2types.DescribeLoadBalancersOutput, error) {
	if len(in.Names) > 0 && len(in.LoadBalancerArns) > 0 {
		return nil, validation("Load balancer names and load balancer ARNs cannot be specified at the same time")
	}
	if len(in.LoadBalancerArns) > maxDescribeARNs {
		return nil, validation("You can specify up to %d load balancer ARNs", maxDescribeARNs)
	}
	p, err := newPage(in.PageSize, in.Marker)
	if err != nil {
		return nil, err
	}
	out := &elbv2types.DescribeLoadBalancersOutput{LoadBalancers: []elbv2types.LoadBalancer{}}
	err = s.store.View(ctx, func(tx store.ReadTx) error {
		switch {
		case len(in.Names) > 0:
			var missing []string
			for _, name := range in.Names {
				lb, ok, err := state.Get[state.LoadBalancer](tx, state.LoadBalancerKey(name))
				if err != nil {
					return err
				}
				if !ok {
					missing = append(missing, name)
					continue
				}
				out.LoadBalancers = append(out.LoadBalancers, lb.LoadBalancer)
			}
			if len(missing) > 0 {
				return elbv2types.NewLoadBalancerNotFoundException("Load balancers '[%s]' not found", strings.Join(missing, ", "))
			}
		case len(in.LoadBalancerArns) > 0:
			for _, arn := range in.LoadBalancerArns {
				lb, err := s.loadBalancer(tx, arn)
				if err != nil {
					return err
				}
				out.LoadBalancers = append(out.LoadBalancers, lb.LoadBalancer)
			}
		default:
			out.NextMarker, err = scan(tx, state.LoadBalancersPrefix, p, func(kv store.KV) (bool, error) {
				lb, err := state.Decode[state.LoadBalancer](kv)
				if err != nil {
					return false, err
				}
				out.LoadBalancers = append(out.LoadBalancers, lb.LoadBalancer)
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

// DeleteLoadBalancer deletes a load balancer with its listeners and rules;
// its target groups and their targets stay, unused. Deleting one that does
// not exist succeeds, as AWS's does; one with deletion protection is
// refused.
func (s *Service) DeleteLoadBalancer(ctx context.Context, in *elbv2types.DeleteLoadBalancerInput) (*elbv2types.DeleteLoadBalancerOutput, error) {
	res, found, err := s.resolve(in.LoadBalancerArn, state.ELBLoadBalancer)
	if err != nil {
		return nil, err
	}
	if !found {
		return &elbv2types.DeleteLoadBalancerOutput{}, nil
	}
	deleted := false
	_, err = s.store.Update(ctx, func(tx store.Tx) error {
		deleted = false
		lb, ok, err := state.Get[state.LoadBalancer](tx, state.LoadBalancerKey(res.Name))
		if err != nil || !ok || lb.ID != res.ID {
			return err
		}
		if lb.Attributes["deletion_protection.enabled"] == "true" {
			return elbv2types.NewOperationNotPermittedException("Load balancer '%s' cannot be deleted because deletion protection is enabled", lb.LoadBalancerArn)
		}
		kvs, err := tx.List(state.ListenersLBPrefix(lb.ID), "", 0)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			l, err := state.Decode[state.Listener](kv)
			if err != nil {
				return err
			}
			if err := s.deleteListener(tx, l); err != nil {
				return err
			}
		}
		if err := state.ReleaseLoopback(tx, lb.Address); err != nil {
			return err
		}
		deleted = true
		return tx.Delete(state.LoadBalancerKey(res.Name))
	})
	if err != nil {
		return nil, err
	}
	if deleted {
		s.log.Info("load balancer deleted", "load_balancer", res.Name)
	}
	return &elbv2types.DeleteLoadBalancerOutput{}, nil
}
