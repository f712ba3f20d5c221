package scheduler

import (
	"strings"
)

// MaxConstraints is how many placement constraints ECS allows for a task,
// those of the task definition and the request together.
const MaxConstraints = 10

// MaxStrategies is how many placement strategy rules ECS allows.
const MaxStrategies = 5

// ConstraintType is a placement constraint type, as ECS spells it.
type ConstraintType string

// The placement constraint types.
const (
	// DistinctInstance places each task of the group on a different
	// container instance: an instance already running a task of the group
	// (placed earlier or in the same call) refuses it.
	DistinctInstance ConstraintType = "distinctInstance"
	// MemberOf restricts placement to instances satisfying an expression.
	MemberOf ConstraintType = "memberOf"
)

// Constraint is a placement constraint. Build one with ParseConstraint.
type Constraint struct {
	// Type is DistinctInstance or MemberOf.
	Type ConstraintType
	// Expression is the parsed expression of a MemberOf constraint; nil for
	// DistinctInstance.
	Expression *Expression
}

// ParseConstraint checks a placement constraint as the API receives it
// (type and expression strings) and parses its expression. Its errors wrap
// errdefs.ErrInvalidArgument and carry ECS's messages where they are known.
func ParseConstraint(typ, expression string) (Constraint, error) {
	switch ConstraintType(typ) {
	case DistinctInstance:
		if expression != "" {
			return Constraint{}, invalid("distinctInstance expression should not be specified.")
		}
		return Constraint{Type: DistinctInstance}, nil
	case MemberOf:
		if expression == "" {
			return Constraint{}, invalid("memberOf expression must be specified.")
		}
		e, err := ParseExpression(expression)
		if err != nil {
			return Constraint{}, err
		}
		return Constraint{Type: MemberOf, Expression: e}, nil
	}
	return Constraint{}, invalid("Invalid placement constraint type %q: want distinctInstance or memberOf.", typ)
}

// StrategyType is a placement strategy type, as ECS spells it.
type StrategyType string

// The placement strategy types.
const (
	// Binpack prefers the instance with the least remaining CPU or memory
	// (Field "cpu" or "memory"), which fills instances before using more.
	Binpack StrategyType = "binpack"
	// Spread prefers the instance, or the instances sharing an attribute
	// value, with the fewest tasks of the task's group (Field "instanceId"
	// or "attribute:<name>"). It counts the group's tasks on every instance
	// of the snapshot, DRAINING ones included, and those placed since.
	Spread StrategyType = "spread"
	// Random picks uniformly among the candidates, reproducibly from the
	// seed given to Place.
	Random StrategyType = "random"
)

// Strategy fields with a fixed meaning.
const (
	FieldCPU        = "cpu"
	FieldMemory     = "memory"
	FieldInstanceID = "instanceId"
)

// Strategy is one placement strategy rule. Rules apply in order: each later
// rule only breaks the ties of the earlier ones, and the instance ID breaks
// the last ties, so placement is deterministic.
type Strategy struct {
	// Type is Binpack, Spread or Random.
	Type StrategyType
	// Field is "cpu" or "memory" for Binpack; "instanceId" (or "host") or
	// "attribute:<name>" for Spread, where the instances without the
	// attribute form one more bucket; unused for Random.
	Field string
}

// ParseStrategy checks a placement strategy rule as the API receives it and
// normalises its field: "host" becomes "instanceId", binpack fields are
// lower-cased, and a random rule drops its (unused) field. Errors wrap
// errdefs.ErrInvalidArgument.
func ParseStrategy(typ, field string) (Strategy, error) {
	s := Strategy{Type: StrategyType(typ), Field: field}
	switch s.Type {
	case Binpack:
		s.Field = strings.ToLower(field)
	case Spread:
		if strings.EqualFold(field, "host") || strings.EqualFold(field, FieldInstanceID) {
			s.Field = FieldInstanceID
		}
	case Random:
		s.Field = ""
	}
	if err := s.validate(); err != nil {
		return Strategy{}, err
	}
	return s, nil
}

func (s Strategy) validate() error {
	switch s.Type {
	case Binpack:
		if s.Field != FieldCPU && s.Field != FieldMemory {
			return invalid("Invalid field %q for the binpack placement strategy: want cpu or memory.", s.Field)
		}
	case Spread:
		name, isAttr := strings.CutPrefix(s.Field, "attribute:")
		if s.Field != FieldInstanceID && s.Field != "host" && (!isAttr || name == "") {
			return invalid("Invalid field %q for the spread placement strategy: want instanceId, host or attribute:<name>.", s.Field)
		}
	case Random:
	default:
		return invalid("Invalid placement strategy type %q: want random, spread or binpack.", string(s.Type))
	}
	return nil
}

// RunTaskDefaultStrategy returns the strategy ECS uses for RunTask when the
// request gives none: random ("When you run tasks with the RunTask API
// action, tasks are placed randomly in a cluster", AWS Compute Blog, "Amazon
// ECS Task Placement"). Place uses it for a Task without a Strategy.
func RunTaskDefaultStrategy() []Strategy {
	return []Strategy{{Type: Random}}
}

// ServiceDefaultStrategy returns the strategy of the ECS service scheduler
// for a service created without one: spread across Availability Zones, then
// across the instances of a zone ("Sort the valid container instances by
// the fewest number of running tasks for this service in the same
// Availability Zone as the instance ... favoring container instances with
// the fewest number of running tasks for this service", CreateService).
func ServiceDefaultStrategy() []Strategy {
	return []Strategy{
		{Type: Spread, Field: "attribute:ecs.availability-zone"},
		{Type: Spread, Field: FieldInstanceID},
	}
}
