package ecs

import (
	"context"
	"slices"
	"strings"

	"github.com/berthdev/berth/internal/api/paging"
	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// Task definition statuses.
const (
	tdActive           = "ACTIVE"
	tdInactive         = "INACTIVE"
	tdDeleteInProgress = "DELETE_IN_PROGRESS"
)

func unableToDescribe() error { return clientErr("Unable to describe task definition.") }

// RegisterTaskDefinition stores a new revision of a family.
func (s *Service) RegisterTaskDefinition(ctx context.Context, in *ecstypes.RegisterTaskDefinitionRequest) (*ecstypes.RegisterTaskDefinitionResponse, error) {
	td, err := prepareTaskDefinition(in)
	if err != nil {
		return nil, err
	}
	td.Status = tdActive
	td.RegisteredBy = s.caller(ctx)
	td.RegisteredAt = awsmodel.NewTime(s.now())
	var rec *state.TaskDefinition
	_, err = s.store.Update(ctx, func(tx store.Tx) error {
		fam, ok, err := state.Get[state.Family](tx, state.FamilyKey(in.Family))
		if err != nil {
			return err
		}
		if !ok {
			fam = &state.Family{Name: in.Family}
		}
		// fn may run again if the batch retries: work on copies.
		f := *fam
		f.LastRevision++
		f.Revisions++
		f.ActiveRevisions++
		f.LatestActive = f.LastRevision
		t := *td
		t.Revision = f.LastRevision
		t.TaskDefinitionArn = s.arns.TaskDefinition(in.Family, f.LastRevision)
		rec = &state.TaskDefinition{TaskDefinition: t, Tags: dedupeTags(in.Tags)}
		if err := state.Put(tx, state.FamilyKey(in.Family), &f); err != nil {
			return err
		}
		return state.PutTaskDefinition(tx, rec, "")
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("task definition registered", "task_definition", rec.TaskDefinition.TaskDefinitionArn)
	return &ecstypes.RegisterTaskDefinitionResponse{TaskDefinition: &rec.TaskDefinition, Tags: rec.Tags}, nil
}

// lookupTaskDefinition resolves family (its latest ACTIVE revision),
// family:revision or an ARN.
func (s *Service) lookupTaskDefinition(tx store.ReadTx, ref string) (*state.TaskDefinition, error) {
	family, rev, ok := s.arns.TaskDefinitionRef(ref)
	if !ok {
		return nil, unableToDescribe()
	}
	if rev == 0 {
		fam, ok, err := state.Get[state.Family](tx, state.FamilyKey(family))
		if err != nil {
			return nil, err
		}
		if !ok || fam.LatestActive == 0 {
			return nil, unableToDescribe()
		}
		rev = fam.LatestActive
	}
	td, ok, err := state.Get[state.TaskDefinition](tx, state.TaskDefKey(family, rev))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, unableToDescribe()
	}
	return td, nil
}

// DescribeTaskDefinition describes one revision, with its tags when asked.
func (s *Service) DescribeTaskDefinition(ctx context.Context, in *ecstypes.DescribeTaskDefinitionRequest) (*ecstypes.DescribeTaskDefinitionResponse, error) {
	var td *state.TaskDefinition
	err := s.store.View(ctx, func(tx store.ReadTx) error {
		var err error
		td, err = s.lookupTaskDefinition(tx, in.TaskDefinition)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := &ecstypes.DescribeTaskDefinitionResponse{TaskDefinition: &td.TaskDefinition}
	if slices.Contains(in.Include, ecstypes.TaskDefinitionFieldTags) {
		out.Tags = td.Tags
	}
	return out, nil
}

// DeregisterTaskDefinition marks a revision INACTIVE. Tasks and services that
// use it keep running; new ones cannot start from it.
func (s *Service) DeregisterTaskDefinition(ctx context.Context, in *ecstypes.DeregisterTaskDefinitionRequest) (*ecstypes.DeregisterTaskDefinitionResponse, error) {
	family, rev, ok := s.arns.TaskDefinitionRef(in.TaskDefinition)
	if !ok {
		return nil, clientErr("Invalid task definition %q: give family:revision or the full ARN.", in.TaskDefinition)
	}
	if rev == 0 {
		return nil, clientErr("Invalid revision number: %q names no revision. Give family:revision or the full ARN.", in.TaskDefinition)
	}
	var out *state.TaskDefinition
	_, err := s.store.Update(ctx, func(tx store.Tx) error {
		td, ok, err := state.Get[state.TaskDefinition](tx, state.TaskDefKey(family, rev))
		if err != nil {
			return err
		}
		if !ok {
			return clientErr("The specified task definition does not exist.")
		}
		if td.TaskDefinition.Status != tdActive {
			out = td
			return nil
		}
		td.TaskDefinition.Status = tdInactive
		td.TaskDefinition.DeregisteredAt = awsmodel.NewTime(s.now())
		out = td
		if err := state.PutTaskDefinition(tx, td, tdActive); err != nil {
			return err
		}
		return s.refreshFamily(tx, family)
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("task definition deregistered", "task_definition", out.TaskDefinition.TaskDefinitionArn)
	return &ecstypes.DeregisterTaskDefinitionResponse{TaskDefinition: &out.TaskDefinition}, nil
}

// refreshFamily recomputes a family's active count and latest ACTIVE
// revision after a revision changed status. It walks only that family.
func (s *Service) refreshFamily(tx store.Tx, family string) error {
	fam, ok, err := state.Get[state.Family](tx, state.FamilyKey(family))
	if err != nil {
		return err
	}
	if !ok {
		fam = &state.Family{Name: family}
	}
	f := *fam
	f.Revisions, f.ActiveRevisions, f.LatestActive = 0, 0, 0
	err = eachUnder(tx, state.TaskDefFamilyPrefix(family), func(td *state.TaskDefinition) {
		f.Revisions++
		if td.TaskDefinition.Status == tdActive {
			f.ActiveRevisions++
			f.LatestActive = max(f.LatestActive, td.TaskDefinition.Revision)
		}
	})
	if err != nil {
		return err
	}
	return state.Put(tx, state.FamilyKey(family), &f)
}

// DeleteTaskDefinitions deletes INACTIVE revisions (at most 10 per call).
// Each comes back with status DELETE_IN_PROGRESS; one that cannot be deleted
// comes back as a failure.
func (s *Service) DeleteTaskDefinitions(ctx context.Context, in *ecstypes.DeleteTaskDefinitionsRequest) (*ecstypes.DeleteTaskDefinitionsResponse, error) {
	if len(in.TaskDefinitions) > 10 {
		return nil, invalidParam("You can delete at most 10 task definitions in one call; %d were given.", len(in.TaskDefinitions))
	}
	out := &ecstypes.DeleteTaskDefinitionsResponse{}
	_, err := s.store.Update(ctx, func(tx store.Tx) error {
		out.TaskDefinitions, out.Failures = nil, nil
		touched := map[string]bool{}
		for _, ref := range in.TaskDefinitions {
			family, rev, ok := s.arns.TaskDefinitionRef(ref)
			if !ok || rev == 0 {
				out.Failures = append(out.Failures, ecstypes.Failure{Arn: ref, Reason: "The specified task definition identifier is invalid. Specify a valid name or ARN and revision."})
				continue
			}
			key := state.TaskDefKey(family, rev)
			td, ok, err := state.Get[state.TaskDefinition](tx, key)
			if err != nil {
				return err
			}
			arn := s.arns.TaskDefinition(family, rev)
			switch {
			case !ok:
				out.Failures = append(out.Failures, ecstypes.Failure{Arn: arn, Reason: "The specified task definition does not exist."})
				continue
			case td.TaskDefinition.Status == tdActive:
				out.Failures = append(out.Failures, ecstypes.Failure{Arn: arn, Reason: "The specified task definition is still in ACTIVE status. Please deregister the target and try again."})
				continue
			}
			prev := string(td.TaskDefinition.Status)
			td.TaskDefinition.Status = tdDeleteInProgress
			out.TaskDefinitions = append(out.TaskDefinitions, td.TaskDefinition)
			// No task or service can reference a revision yet, so the
			// deletion completes at once.
			if err := state.DeleteTaskDefinition(tx, family, rev, prev); err != nil {
				return err
			}
			touched[family] = true
		}
		for family := range touched {
			if err := s.refreshFamily(tx, family); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListTaskDefinitions lists revision ARNs by family then revision, ascending
// or descending, filtered by status (ACTIVE by default) and family. It reads
// the status index, so a page costs its own size whatever the filter.
func (s *Service) ListTaskDefinitions(ctx context.Context, in *ecstypes.ListTaskDefinitionsRequest) (*ecstypes.ListTaskDefinitionsResponse, error) {
	p, err := newPage(in.MaxResults, in.NextToken, 100)
	if err != nil {
		return nil, err
	}
	status := string(in.Status)
	if status == "" {
		status = tdActive
	}
	prefix := state.TaskDefStatusFamilyPrefix(status, in.FamilyPrefix)
	out := &ecstypes.ListTaskDefinitionsResponse{}
	err = s.store.View(ctx, func(tx store.ReadTx) error {
		var kvs []store.KV
		var err error
		if in.Sort == ecstypes.SortOrderDesc {
			kvs, err = tx.ListReverse(prefix, p.After, p.Limit+1)
		} else {
			kvs, err = tx.List(prefix, p.After, p.Limit+1)
		}
		if err != nil {
			return err
		}
		if len(kvs) > p.Limit {
			kvs = kvs[:p.Limit]
			out.NextToken = paging.Token(kvs[len(kvs)-1].Key)
		}
		for _, kv := range kvs {
			out.TaskDefinitionArns = append(out.TaskDefinitionArns, string(kv.Value))
		}
		return nil
	})
	return out, err
}

// ListTaskDefinitionFamilies lists family names starting with familyPrefix,
// filtered by status (ACTIVE: has an ACTIVE revision; INACTIVE: has none;
// ALL, the default: both).
func (s *Service) ListTaskDefinitionFamilies(ctx context.Context, in *ecstypes.ListTaskDefinitionFamiliesRequest) (*ecstypes.ListTaskDefinitionFamiliesResponse, error) {
	p, err := newPage(in.MaxResults, in.NextToken, 100)
	if err != nil {
		return nil, err
	}
	out := &ecstypes.ListTaskDefinitionFamiliesResponse{}
	err = s.store.View(ctx, func(tx store.ReadTx) error {
		out.NextToken, err = scan(tx, state.FamilyKey(in.FamilyPrefix), p, func(kv store.KV) (bool, error) {
			f, err := state.Decode[state.Family](kv)
			if err != nil {
				return false, err
			}
			if f.Revisions == 0 {
				// Every revision was deleted: ECS stops listing the name
				// (the record stays, so revision numbers keep counting).
				return false, nil
			}
			active := f.ActiveRevisions > 0
			switch in.Status {
			case ecstypes.TaskDefinitionFamilyStatusActive:
				if !active {
					return false, nil
				}
			case ecstypes.TaskDefinitionFamilyStatusInactive:
				if active {
					return false, nil
				}
			}
			out.Families = append(out.Families, strings.TrimPrefix(kv.Key, state.FamiliesPrefix))
			return true, nil
		})
		return err
	})
	return out, err
}
