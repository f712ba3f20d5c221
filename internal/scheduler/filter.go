package scheduler

import (
	"fmt"
	"strconv"
	"strings"
)

// stage is the filter an instance failed; the filters run in this order, so
// a later stage means the instance came closer to taking the task.
type stage uint8

const (
	stageOK stage = iota
	stageAgent
	stageAttribute
	stageMemberOf
	stageDistinct
	stageCPU
	stageMemory
	stagePorts
)

var stageReasons = [...]string{
	stageAgent:     ReasonAgent,
	stageAttribute: ReasonAttribute,
	stageMemberOf:  ReasonMemberOf,
	stageDistinct:  ReasonDistinctInstance,
	stageCPU:       ReasonCPU,
	stageMemory:    ReasonMemory,
	stagePorts:     ReasonPorts,
}

// check runs the filters on instance i (whose status the caller checked)
// and returns the first one it fails, or stageOK.
func (s *Snapshot) check(i int, ct *compiled) stage {
	in := &s.inst[i]
	if !in.AgentConnected {
		return stageAgent
	}
	for _, a := range ct.t.RequiredAttributes {
		if v, ok := in.Attributes[a.Name]; !ok || a.Value != "" && v != a.Value {
			return stageAttribute
		}
	}
	for k, e := range ct.memberOf {
		if !s.satisfies(i, e, ct.memos[k]) {
			return stageMemberOf
		}
	}
	if ct.distinct && ct.counts[i] > 0 {
		return stageDistinct
	}
	if ct.cpu > 0 && ct.cpu > s.cpu[i] {
		return stageCPU
	}
	if ct.mem > 0 && ct.mem > s.mem[i] {
		return stageMemory
	}
	if len(ct.ports) > 0 && s.portConflicts(i, ct, nil) > 0 {
		return stagePorts
	}
	return stageOK
}

// satisfies evaluates a memberOf expression on instance i, through memo
// when the expression's answer cannot change (it has no task:group).
func (s *Snapshot) satisfies(i int, e *Expression, memo []uint8) bool {
	if memo != nil && memo[i] != 0 {
		return memo[i] == 1
	}
	s.view.in, s.view.placed = &s.inst[i], nil
	if x := s.ext[i]; x != 0 {
		s.view.placed = s.extras[x-1].placed
	}
	ok := e.root.eval(&s.view)
	if memo != nil {
		memo[i] = 2
		if ok {
			memo[i] = 1
		}
	}
	return ok
}

// portConflicts counts the task's ports already taken on instance i,
// appending them to taken if it is not nil, and counts every port when the
// instance would exceed MaxReservedPorts.
func (s *Snapshot) portConflicts(i int, ct *compiled, taken *[]uint32) int {
	used := s.inst[i].UsedPorts
	var mine []uint32
	if e := s.ext[i]; e != 0 {
		mine = s.extras[e-1].ports
	}
	if len(used)+len(mine)+len(ct.ports) > MaxReservedPorts {
		return len(ct.ports)
	}
	n := 0
next:
	for _, p := range ct.ports {
		for _, u := range used {
			if u.code() == p {
				n++
				if taken != nil {
					*taken = append(*taken, p)
				}
				continue next
			}
		}
		for _, m := range mine {
			if m == p {
				n++
				if taken != nil {
					*taken = append(*taken, p)
				}
				continue next
			}
		}
	}
	return n
}

// explain lists, once no candidate is left, why each ACTIVE instance
// refuses the task.
func (s *Snapshot) explain(ct *compiled, res *Result) {
	for i := range s.inst {
		if s.inst[i].Status != StatusActive {
			continue
		}
		st := s.check(i, ct)
		f, gap := s.failure(i, st, ct)
		res.noteClosest(st, gap, len(res.Failures))
		res.Failures = append(res.Failures, f)
	}
}

// failure describes instance i's refusal at stage st, and how far it is
// from passing that stage (the missing CPU units or MiB, the ports taken)
// to find the closest instance.
func (s *Snapshot) failure(i int, st stage, ct *compiled) (Failure, int64) {
	in := &s.inst[i]
	f := Failure{InstanceID: in.ID, InstanceARN: in.ARN, Reason: stageReasons[st]}
	var gap int64
	switch st {
	case stageAgent:
		f.Detail = fmt.Sprintf("The agent of container instance %s is disconnected.", in.ID)
	case stageAttribute:
		for _, a := range ct.t.RequiredAttributes {
			v, ok := in.Attributes[a.Name]
			if !ok {
				f.Detail = fmt.Sprintf("Container instance %s does not have the attribute %q that the task requires.", in.ID, a.Name)
				break
			}
			if a.Value != "" && v != a.Value {
				f.Detail = fmt.Sprintf("Container instance %s has attribute %q = %q; the task requires %q.", in.ID, a.Name, v, a.Value)
				break
			}
		}
	case stageMemberOf:
		for k, e := range ct.memberOf {
			if !s.satisfies(i, e, ct.memos[k]) {
				f.Detail = fmt.Sprintf("Container instance %s does not satisfy the memberOf expression %q.", in.ID, e.String())
				break
			}
		}
	case stageDistinct:
		f.Detail = fmt.Sprintf("Container instance %s already has a task of group %q, and the task must run on a distinct instance.", in.ID, ct.t.Group)
	case stageCPU:
		gap = ct.cpu - s.cpu[i]
		f.Detail = fmt.Sprintf("Container instance %s has %d CPU units available; the task needs %d.", in.ID, s.cpu[i], ct.cpu)
	case stageMemory:
		gap = ct.mem - s.mem[i]
		f.Detail = fmt.Sprintf("Container instance %s has %d MiB of memory available; the task needs %d MiB.", in.ID, s.mem[i], ct.mem)
	case stagePorts:
		var taken []uint32
		gap = int64(s.portConflicts(i, ct, &taken))
		if len(taken) == 0 {
			used := len(in.UsedPorts)
			if e := s.ext[i]; e != 0 {
				used += len(s.extras[e-1].ports)
			}
			f.Detail = fmt.Sprintf("Container instance %s reserves %d host ports; the task's %d more would exceed the limit of %d.",
				in.ID, used, len(ct.ports), MaxReservedPorts)
			break
		}
		names := make([]string, len(taken))
		for j, p := range taken {
			names[j] = portString(p)
		}
		f.Detail = fmt.Sprintf("Container instance %s is already using host port %s, which the task needs.", in.ID, strings.Join(names, ", "))
	}
	return f, gap
}

// Result is the outcome of placing tasks.
type Result struct {
	// Placements are where the placed tasks go, in the order they were
	// placed; fewer than requested when some could not be placed.
	Placements []Placement
	// Failures say why tasks were not placed: from Place, one entry per
	// ACTIVE instance (in the snapshot's order) with its reason for refusing
	// the first task that found no instance; from PlaceOn, one entry per
	// named instance that refused. Empty when every task was placed.
	Failures []Failure

	closest      int // 1 + index in Failures of the closest instance; 0 if none
	closestStage stage
	closestGap   int64
}

// noteClosest considers failure number idx, at stage st and gap, for the
// closest matching instance: the one that passed the most filters, then the
// one missing the least of the resource it lacks, then the first.
func (r *Result) noteClosest(st stage, gap int64, idx int) {
	if r.closest == 0 || st > r.closestStage || st == r.closestStage && gap < r.closestGap {
		r.closest, r.closestStage, r.closestGap = idx+1, st, gap
	}
}

// Closest returns the failure of the closest matching instance, the one
// ECS names in its service events, and false if nothing failed.
func (r *Result) Closest() (Failure, bool) {
	if r.closest == 0 || r.closest > len(r.Failures) {
		return Failure{}, false
	}
	return r.Failures[r.closest-1], true
}

// Explain returns why tasks were not placed in the words of ECS's service
// events, or "" if every task was placed, for example:
//
//	no container instance met all of its requirements. The closest matching container-instance 8f1c has insufficient memory available.
//
// The service controller's event is "service <name> was unable to place a
// task because " followed by this text.
func (r *Result) Explain() string {
	f, ok := r.Closest()
	if !ok {
		return ""
	}
	var what string
	switch f.Reason {
	case ReasonCPU:
		what = "has insufficient CPU units available."
	case ReasonMemory:
		what = "has insufficient memory available."
	case ReasonPorts:
		what = "is already using a port required by your task."
	case ReasonAttribute:
		what = "is missing an attribute required by your task."
	default:
		what = "encountered error " + strconv.Quote(f.Reason) + "."
	}
	return "no container instance met all of its requirements. The closest matching container-instance " + f.InstanceID + " " + what
}
