// Package scheduler places ECS tasks on container instances. It is a pure
// function over a snapshot, in the manner of Nomad's scheduler: instances
// and a task go in, placements and the reasons for refusals come out. It
// does no I/O, reads no clock and uses no global randomness; the random
// strategy is driven by a seed the caller passes.
//
//	snapshot (instances) + task (resources, constraints, strategy) + seed
//	        |
//	        v
//	filters, in order, each able to say why it refused   (swarmkit style)
//	  status ACTIVE -> AGENT -> ATTRIBUTE -> MemberOf -> DistinctInstance
//	  -> RESOURCE:CPU -> RESOURCE:MEMORY -> RESOURCE:PORTS
//	        |
//	        v
//	strategy rules rank the candidates: binpack / spread / random, in order,
//	then the instance ID
//	        |
//	        v
//	placements + failures (one per refusing instance) + the closest instance
//
// RunTask calls Place (or NewSnapshot(...).Place); StartTask calls PlaceOn;
// the service controller keeps one Snapshot and calls Place repeatedly, each
// call seeing the resources the previous ones took. The API layer turns
// placement constraints and strategies into Constraint and Strategy values
// with ParseConstraint and ParseStrategy up front, so a bad expression is
// an InvalidParameterException before anything is placed.
//
// # What ECS does, and where it says so
//
// Failure reasons are the strings ECS puts in RunTask's failures[].reason,
// one failure per container instance with its ARN: RESOURCE:CPU,
// RESOURCE:MEMORY, RESOURCE:PORTS, AGENT and ATTRIBUTE ("API failure
// reasons", Amazon ECS Developer Guide); "MemberOf placement constraint
// unsatisfied." and "DistinctInstance placement constraint unsatisfied." as
// observed in RunTask answers and service events. A cluster without
// container instances is not a failure but an InvalidParameterException,
// "No Container Instances were found in your cluster." (ErrNoInstances).
// A RunTask of count 2 on one instance with a static port places one task
// and reports RESOURCE:PORTS for the same instance: the tasks of one call
// consume resources and ports for the next, as here.
//
// The ECS guide ("Amazon ECS task placement") lists the steps as: the
// instances with the CPU, memory and ports the task needs, then those that
// satisfy the constraints, then the strategies. Which reason an instance
// failing several checks reports is not documented. Here an instance's own
// properties (agent, attributes, constraints) are checked before its free
// resources, so an instance that could never run the task says why, rather
// than naming a resource whose addition would not help.
//
// ECS's service events name the closest matching instance: "service X was
// unable to place a task because no container instance met all of its
// requirements. The closest matching container-instance <id> has
// insufficient memory available." (also "insufficient CPU units", "is
// already using a port required by your task", "is missing an attribute
// required by your task", and `encountered error "AGENT".` for the rest;
// "Service event messages", Amazon ECS Developer Guide). Result.Explain
// produces that text. Which instance is closest is not documented; here it
// is the one that passed the most filters in the order above, then the one
// missing the least of the resource it lacks.
//
// distinctInstance "places each task in the group on a different instance"
// (task placement constraints); it counts tasks of the group already
// running, not only those of the same call (a RunTask of count 1 with
// distinctInstance fails on an instance that runs a task of its group).
// spread counts "the tasks from that service" for service tasks and "the
// tasks from the same task group" for standalone tasks, which is the task's
// Group either way. binpack prefers "the least available amount of CPU or
// memory". Without a strategy, RunTask places randomly and the service
// scheduler spreads across Availability Zones and then instances (AWS
// Compute Blog, "Amazon ECS Task Placement"; CreateService);
// RunTaskDefaultStrategy and ServiceDefaultStrategy return those.
//
// The cluster query language ("Cluster query language", Amazon ECS
// Developer Guide) is described at ParseExpression. The guide documents no
// wildcard for ==: "attribute:ecs.instance-type =~ t2.*" is how its examples
// match a family of values, and == compares strings exactly.
package scheduler
