package controller

import (
	"fmt"
	"slices"
	"strings"

	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/awsmodel/elbv2types"
	"github.com/berthdev/berth/internal/deploy"
	"github.com/berthdev/berth/internal/launch"
	"github.com/berthdev/berth/internal/state"
)

// Load-balanced services: the pass registers a service's running tasks in
// its target groups (the task's address and container port for ip target
// groups, its instance and host port for instance ones), reads their health
// back for the planner, and deregisters a task it stops, which then drains
// (DEACTIVATING) for the group's deregistration delay before it is stopped.
// Target records are written through package state, the same records the
// ELBv2 API and the load balancer use; the controller watches them
// (/elb/targets/) to hear of health changes and drained targets.

// targetGroupRef splits a target group ARN (…:targetgroup/<name>/<id>).
func targetGroupRef(arn string) (name, id string, ok bool) {
	_, rest, found := strings.Cut(arn, ":targetgroup/")
	if !found {
		return "", "", false
	}
	name, id, ok = strings.Cut(rest, "/")
	return name, id, ok && name != "" && id != ""
}

// targetsOf is what the planner needs of a task's registrations: those
// still registered, with their health.
func (p *pass) targetsOf(t *state.Task) ([]deploy.Target, error) {
	var out []deploy.Target
	for _, tt := range t.Targets {
		name, id, ok := targetGroupRef(tt.TargetGroupArn)
		if !ok {
			continue
		}
		p.c.watchTarget(state.TargetKey(id, tt.ID, tt.Port), p.cluster+"/"+p.svc.ServiceName)
		rec, ok, err := state.GetTarget(p.tx, id, tt.ID, tt.Port)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue // drained and removed, or deregistered by hand
		}
		dt := deploy.Target{TargetGroupArn: tt.TargetGroupArn, Name: name, Port: tt.Port,
			State: string(rec.Health.State), Description: rec.Health.Description}
		if strings.HasPrefix(tt.ID, "i-") {
			dt.Instance = tt.ID
		}
		out = append(out, dt)
	}
	return out, nil
}

// register registers running tasks in every target group of the service.
func (p *pass) register(ids []string) error {
	counts := map[string]int{}
	for _, id := range ids {
		t := p.tasks[id]
		if t == nil {
			continue
		}
		changed := false
		for _, lbc := range p.svc.LoadBalancers {
			if slices.ContainsFunc(t.Targets, func(tt state.TaskTarget) bool { return tt.TargetGroupArn == lbc.TargetGroupArn }) {
				// Registered before; its record may have gone (deregistered
				// by hand): register it again.
				if err := p.registerOne(t, lbc, true); err != nil {
					return err
				}
				continue
			}
			ok, err := p.registerNew(t, lbc)
			if err != nil {
				return err
			}
			if ok {
				counts[lbc.TargetGroupArn]++
				changed = true
			}
		}
		if t.Activating && len(t.Targets) >= len(p.svc.LoadBalancers) {
			if err := p.activated(t); err != nil {
				return err
			}
			changed = true
		}
		if changed {
			if err := state.Put(p.tx, state.TaskKey(p.cluster, t.ID), t); err != nil {
				return err
			}
		}
	}
	for _, arn := range sortedKeys(counts) {
		p.event(fmt.Sprintf("(service %s) registered %d targets in (target-group %s)", p.svc.ServiceName, counts[arn], arn))
	}
	return nil
}

// registerNew works out task t's target in the group of lbc, registers it
// and records it on the task. It reports false when the task cannot be
// registered yet (no address or host port).
func (p *pass) registerNew(t *state.Task, lbc ecstypes.LoadBalancer) (bool, error) {
	tt, ok, err := p.targetFor(t, lbc)
	if err != nil || !ok {
		return false, err
	}
	t.Targets = append(t.Targets, tt)
	return true, p.registerOne(t, lbc, false)
}

// registerOne writes the target record of t in lbc's group (again).
func (p *pass) registerOne(t *state.Task, lbc ecstypes.LoadBalancer, again bool) error {
	for _, tt := range t.Targets {
		if tt.TargetGroupArn != lbc.TargetGroupArn {
			continue
		}
		_, id, ok := targetGroupRef(tt.TargetGroupArn)
		if !ok {
			return nil
		}
		if again {
			if _, exists, err := state.GetTarget(p.tx, id, tt.ID, tt.Port); err != nil || exists {
				return err
			}
		}
		addr := tt.ID
		if strings.HasPrefix(tt.ID, "i-") {
			a, _, err := state.InstanceHostAddress(p.tx, tt.ID)
			if err != nil {
				return err
			}
			addr = a
		}
		rec := &state.Target{TargetGroupArn: tt.TargetGroupArn, Address: addr,
			Target: elbv2types.TargetDescription{Id: tt.ID, Port: new(tt.Port)}}
		if _, err := state.RegisterTarget(p.tx, id, rec, p.now); err != nil {
			return err
		}
		p.c.watchTarget(state.TargetKey(id, tt.ID, tt.Port), p.cluster+"/"+p.svc.ServiceName)
	}
	return nil
}

// targetFor is task t's target in lbc's group: its address and the
// container port (ip groups), or its instance and the host port bound to
// the container port (instance groups).
func (p *pass) targetFor(t *state.Task, lbc ecstypes.LoadBalancer) (state.TaskTarget, bool, error) {
	tg, ok, err := state.GetTargetGroup(p.tx, p.c.Launcher.ARNs, lbc.TargetGroupArn)
	if err != nil || !ok {
		return state.TaskTarget{}, false, err
	}
	port := awsmodel.Value(lbc.ContainerPort)
	if tg.TargetType == elbv2types.TargetTypeEnumIp {
		ip := taskIP(t)
		if ip == "" {
			return state.TaskTarget{}, false, nil
		}
		return state.TaskTarget{TargetGroupArn: lbc.TargetGroupArn, ID: ip, Port: port}, true, nil
	}
	ci, ok, err := state.Get[state.ContainerInstance](p.tx, state.InstanceKey(p.cluster, t.InstanceID))
	if err != nil || !ok {
		return state.TaskTarget{}, false, err
	}
	for _, c := range t.Containers {
		if c.Name != lbc.ContainerName {
			continue
		}
		for _, nb := range c.NetworkBindings {
			if awsmodel.Value(nb.ContainerPort) == port && awsmodel.Value(nb.HostPort) != 0 {
				return state.TaskTarget{TargetGroupArn: lbc.TargetGroupArn, ID: ci.Ec2InstanceId, Port: awsmodel.Value(nb.HostPort)}, true, nil
			}
		}
	}
	return state.TaskTarget{}, false, nil
}

// taskIP is the private address of an awsvpc task's network interface.
func taskIP(t *state.Task) string {
	for _, a := range t.Attachments {
		for _, d := range a.Details {
			if d.Name == "privateIPv4Address" && d.Value != "" {
				return d.Value
			}
		}
	}
	return ""
}

// activated ends task t's ACTIVATING: it is registered in every target
// group of its service, or the service has none any more. The caller
// stores t.
func (p *pass) activated(t *state.Task) error {
	t.Activating = false
	if t.LastStatus != launch.StatusActivating || t.StartedAt == nil {
		return nil // the agent has not reported it running yet
	}
	t.Task.Version++
	return p.moveTask(t, launch.StatusRunning)
}

// moveTask sets t's lastStatus, keeping its instance's counts of tasks by
// status; the caller stores t.
func (p *pass) moveTask(t *state.Task, status string) error {
	prev := t.LastStatus
	t.LastStatus = status
	ci, ok, err := state.Get[state.ContainerInstance](p.tx, state.InstanceKey(p.cluster, t.InstanceID))
	if err != nil || !ok {
		return err
	}
	ci.TaskMoved(t.Group, prev, status, nil)
	return state.Put(p.tx, state.InstanceKey(p.cluster, t.InstanceID), ci)
}

// drain deregisters task t from its target groups and marks it
// DEACTIVATING; the planner stops it once its targets are gone.
func (p *pass) drain(t *state.Task, reason string) error {
	if t.Deactivating != nil {
		return nil
	}
	counts := map[string]int{}
	for _, tt := range t.Targets {
		_, id, ok := targetGroupRef(tt.TargetGroupArn)
		if !ok {
			continue
		}
		tg, ok, err := state.GetTargetGroup(p.tx, p.c.Launcher.ARNs, tt.TargetGroupArn)
		if err != nil {
			return err
		}
		delay := state.DefaultDeregistrationDelay
		if ok {
			delay = tg.DeregistrationDelay()
		}
		done, err := state.DeregisterTarget(p.tx, id, tt.ID, tt.Port, delay, p.now)
		if err != nil {
			return err
		}
		if done {
			counts[tt.TargetGroupArn]++
		}
	}
	t.Deactivating = &state.Deactivation{Reason: reason, Since: *awsmodel.NewTime(p.now)}
	if t.LastStatus == launch.StatusRunning {
		if err := p.moveTask(t, launch.StatusDeactivating); err != nil {
			return err
		}
	}
	t.Task.Version++
	if err := state.Put(p.tx, state.TaskKey(p.cluster, t.ID), t); err != nil {
		return err
	}
	for _, arn := range sortedKeys(counts) {
		p.event(fmt.Sprintf("(service %s) deregistered %d targets in (target-group %s)", p.svc.ServiceName, counts[arn], arn))
	}
	return nil
}

// forgetTargets removes the targets of a task that stopped (it has no
// connections left to drain), unless a live task of the service now holds
// the same target (a static host port reused on the same instance).
func (p *pass) forgetTargets(t *state.Task) error {
	for _, tt := range t.Targets {
		_, id, ok := targetGroupRef(tt.TargetGroupArn)
		if !ok {
			continue
		}
		taken := false
		for _, o := range p.tasks {
			if o.ID != t.ID && o.LastStatus != launch.StatusStopped && slices.Contains(o.Targets, tt) {
				taken = true
			}
		}
		if taken {
			continue
		}
		if _, err := state.RemoveTarget(p.tx, id, tt.ID, tt.Port); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
