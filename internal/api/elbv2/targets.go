package elbv2

import (
	"context"
	"net/netip"
	"strconv"

	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/elbv2types"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// invalidTarget is ELB's error for a target that cannot be registered.
func invalidTarget(format string, args ...any) error {
	return elbv2types.NewInvalidTargetException(format, args...)
}

// targetAddress checks a registration against its group and returns the
// address traffic goes to: the IP itself for ip targets (any address of
// the group's family, loopback and Docker bridge addresses included: Berth
// has no VPC to check against), the instance's host for instance targets.
func (s *Service) targetAddress(tx store.ReadTx, tg *state.TargetGroup, t elbv2types.TargetDescription) (string, error) {
	if t.Id == "" {
		return "", validation("A target ID must be specified")
	}
	if t.QuicServerId != "" {
		return "", validation("QuicServerId applies to QUIC target groups of Network Load Balancers only")
	}
	if tg.TargetType == elbv2types.TargetTypeEnumIp {
		ip, err := netip.ParseAddr(t.Id)
		if err != nil || ip.Zone() != "" {
			return "", invalidTarget("The IP address '%s' is not a valid IP address", t.Id)
		}
		if ip.Is4() != (tg.IpAddressType != elbv2types.TargetGroupIpAddressTypeEnumIpv6) || ip.Is4In6() {
			return "", invalidTarget("The IP address '%s' is not of the target group's IP address type (%s)", t.Id, tg.IpAddressType)
		}
		return ip.String(), nil
	}
	if t.AvailabilityZone != "" {
		return "", validation("An Availability Zone cannot be specified for instance targets")
	}
	addr, ok, err := state.InstanceHostAddress(tx, t.Id)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", invalidTarget("The following targets are not valid instances: '%s'", t.Id)
	}
	return addr, nil
}

// port is the port of a registration: its own, or the group's when it
// gives none.
func port(tg *state.TargetGroup, t elbv2types.TargetDescription) (int32, error) {
	if t.Port == nil {
		return awsmodel.Value(tg.Port), nil
	}
	if p := *t.Port; p < 1 || p > 65535 {
		return 0, validation("Target port %d is not valid: it must be from 1 to 65535", p)
	}
	return *t.Port, nil
}

// RegisterTargets registers targets in a target group. A target starts
// initial (Elb.RegistrationInProgress) when a listener forwards to the
// group, unused (Target.NotInUse) otherwise; the data plane's health checks
// take it from initial. Registering a registered target again changes
// nothing; a draining one is registered anew.
func (s *Service) RegisterTargets(ctx context.Context, in *elbv2types.RegisterTargetsInput) (*elbv2types.RegisterTargetsOutput, error) {
	if len(in.Targets) == 0 {
		return nil, validation("At least one target must be specified")
	}
	_, err := s.store.Update(ctx, func(tx store.Tx) error {
		tg, err := s.targetGroup(tx, in.TargetGroupArn)
		if err != nil {
			return err
		}
		n, err := tx.Count(state.TargetsTGPrefix(tg.ID))
		if err != nil {
			return err
		}
		for _, t := range in.Targets {
			addr, err := s.targetAddress(tx, tg, t)
			if err != nil {
				return err
			}
			p, err := port(tg, t)
			if err != nil {
				return err
			}
			id := t.Id
			if tg.TargetType == elbv2types.TargetTypeEnumIp {
				id = addr // the canonical form of the address
			}
			created, err := state.RegisterTarget(tx, tg.ID, &state.Target{
				TargetGroupArn: tg.TargetGroupArn,
				Target:         elbv2types.TargetDescription{Id: id, Port: new(p), AvailabilityZone: t.AvailabilityZone},
				Address:        addr,
			}, s.now())
			if err != nil {
				return err
			}
			if created {
				n++
			}
			if n > maxTargetsPerGroup {
				return elbv2types.NewTooManyTargetsException("A target group can have at most %d targets", maxTargetsPerGroup)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &elbv2types.RegisterTargetsOutput{}, nil
}

// DeregisterTargets deregisters targets: each drains (draining,
// Target.DeregistrationInProgress) for the group's deregistration delay,
// taking no new requests while those in flight finish, and is then removed
// (Reaper). A target of a group no listener uses is removed at once; one
// that is not registered is skipped ("If the specified target does not
// exist, the action returns successfully").
func (s *Service) DeregisterTargets(ctx context.Context, in *elbv2types.DeregisterTargetsInput) (*elbv2types.DeregisterTargetsOutput, error) {
	if len(in.Targets) == 0 {
		return nil, validation("At least one target must be specified")
	}
	_, err := s.store.Update(ctx, func(tx store.Tx) error {
		tg, err := s.targetGroup(tx, in.TargetGroupArn)
		if err != nil {
			return err
		}
		for _, t := range in.Targets {
			p, err := port(tg, t)
			if err != nil {
				return err
			}
			if _, err := state.DeregisterTarget(tx, tg.ID, canonicalID(tg, t.Id), p, tg.DeregistrationDelay(), s.now()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &elbv2types.DeregisterTargetsOutput{}, nil
}

// canonicalID is the stored form of a target id: an IP address as
// netip prints it.
func canonicalID(tg *state.TargetGroup, id string) string {
	if tg.TargetType == elbv2types.TargetTypeEnumIp {
		if ip, err := netip.ParseAddr(id); err == nil {
			return ip.String()
		}
	}
	return id
}

// DescribeTargetHealth reports the health of a group's targets, or of the
// ones named (unused, Target.NotRegistered, for one not registered). A
// draining target whose delay is over is gone even before the reaper
// removes its record.
func (s *Service) DescribeTargetHealth(ctx context.Context, in *elbv2types.DescribeTargetHealthInput) (*elbv2types.DescribeTargetHealthOutput, error) {
	anomaly := false
	for _, inc := range in.Include {
		anomaly = anomaly || inc == elbv2types.DescribeTargetHealthInputIncludeEnumAnomalyDetection || inc == elbv2types.DescribeTargetHealthInputIncludeEnumAll
	}
	now := s.now()
	out := &elbv2types.DescribeTargetHealthOutput{TargetHealthDescriptions: []elbv2types.TargetHealthDescription{}}
	err := s.store.View(ctx, func(tx store.ReadTx) error {
		tg, err := s.targetGroup(tx, in.TargetGroupArn)
		if err != nil {
			return err
		}
		all, err := state.ListTargets(tx, tg.ID)
		if err != nil {
			return err
		}
		live := all[:0]
		for _, t := range all {
			if t.DrainUntil == nil || t.DrainUntil.After(now) {
				live = append(live, t)
			}
		}
		describe := func(t *state.Target) {
			d := elbv2types.TargetHealthDescription{
				Target:          &elbv2types.TargetDescription{Id: t.Target.Id, Port: t.Target.Port, AvailabilityZone: t.Target.AvailabilityZone},
				HealthCheckPort: healthCheckPort(tg, awsmodel.Value(t.Target.Port)),
			}
			h := t.Health
			if h.State == elbv2types.TargetHealthStateEnumHealthy {
				h.Reason, h.Description = "", ""
			}
			d.TargetHealth = &h
			if anomaly {
				d.AnomalyDetection = &elbv2types.AnomalyDetection{Result: elbv2types.AnomalyResultEnumNormal, MitigationInEffect: elbv2types.MitigationInEffectEnumNo}
			}
			out.TargetHealthDescriptions = append(out.TargetHealthDescriptions, d)
		}
		if len(in.Targets) == 0 {
			for _, t := range live {
				describe(t)
			}
			return nil
		}
		for _, want := range in.Targets {
			if tg.TargetType == elbv2types.TargetTypeEnumIp {
				if _, err := netip.ParseAddr(want.Id); err != nil {
					return invalidTarget("The IP address '%s' is not a valid IP address", want.Id)
				}
			}
			id := canonicalID(tg, want.Id)
			matched := false
			for _, t := range live {
				if t.Target.Id == id && (want.Port == nil || *want.Port == awsmodel.Value(t.Target.Port)) {
					describe(t)
					matched = true
				}
			}
			if !matched {
				p := want.Port
				if p == nil {
					p = tg.Port
				}
				describe(&state.Target{
					Target: elbv2types.TargetDescription{Id: want.Id, Port: new(awsmodel.Value(p)), AvailabilityZone: want.AvailabilityZone},
					Health: elbv2types.TargetHealth{State: elbv2types.TargetHealthStateEnumUnused, Reason: elbv2types.TargetHealthReasonEnumTargetNotRegistered, Description: state.DescNotRegistered},
				})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// healthCheckPort is the port health checks of a target on port p go to.
func healthCheckPort(tg *state.TargetGroup, p int32) string {
	if tg.HealthCheckPort == defaultHealthCheckPort || tg.HealthCheckPort == "" {
		return strconv.Itoa(int(p))
	}
	return tg.HealthCheckPort
}
