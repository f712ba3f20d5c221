package ecs

import (
	"context"
	"slices"
	"strings"

	"github.com/berthdev/berth/internal/api/paging"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/deploy"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// Service deployments are the records package deploy writes, one per
// deployment a service starts (a rollback reuses the record of the
// deployment it rolls back): ListServiceDeployments and
// DescribeServiceDeployments read them, StopServiceDeployment rolls one
// back.

// stopReason is the statusReason of a deployment rolled back by
// StopServiceDeployment.
const stopReason = "Service deployment rolled back because of a stop request."

// ListServiceDeployments lists a service's deployments, newest first, 20 a
// page unless maxResults says otherwise, optionally only those with one of
// the given statuses or created in a time range.
func (s *Service) ListServiceDeployments(ctx context.Context, in *ecstypes.ListServiceDeploymentsRequest) (*ecstypes.ListServiceDeploymentsResponse, error) {
	p, err := newPage(in.MaxResults, in.NextToken, 100)
	if err != nil {
		return nil, err
	}
	if in.MaxResults == nil {
		p.Limit = 20
	}
	out := &ecstypes.ListServiceDeploymentsResponse{}
	err = s.store.View(ctx, func(tx store.ReadTx) error {
		cl, svc, err := s.findService(tx, in.Cluster, in.Service)
		if err != nil {
			return err
		}
		prefix := state.ServiceDeploymentsKeyPrefix(cl.ClusterName, svc.ServiceName)
		if p.After != "" && !strings.HasPrefix(p.After, prefix) {
			return invalidParam("The nextToken is not valid: pass the nextToken from the previous response unchanged.")
		}
		out.NextToken, err = scanReverse(tx, prefix, p, func(kv store.KV) (bool, error) {
			rec, err := state.Decode[state.ServiceDeployment](kv)
			if err != nil {
				return false, err
			}
			if len(in.Status) > 0 && !slices.Contains(in.Status, rec.Status) {
				return false, nil
			}
			if c := in.CreatedAt; c != nil && rec.CreatedAt != nil {
				if c.Before != nil && !rec.CreatedAt.Before(c.Before.Time) || c.After != nil && !rec.CreatedAt.After(c.After.Time) {
					return false, nil
				}
			}
			sd := rec.ServiceDeployment
			brief := ecstypes.ServiceDeploymentBrief{
				ServiceDeploymentArn: sd.ServiceDeploymentArn, ServiceArn: sd.ServiceArn, ClusterArn: sd.ClusterArn,
				StartedAt: sd.StartedAt, CreatedAt: sd.CreatedAt, FinishedAt: sd.FinishedAt,
				Status: sd.Status, StatusReason: sd.StatusReason,
			}
			if sd.TargetServiceRevision != nil {
				brief.TargetServiceRevisionArn = sd.TargetServiceRevision.Arn
			}
			out.ServiceDeployments = append(out.ServiceDeployments, brief)
			return true, nil
		})
		return err
	})
	return out, err
}

// DescribeServiceDeployments describes up to 20 service deployments by
// ARN; unknown ones come back as MISSING failures.
func (s *Service) DescribeServiceDeployments(ctx context.Context, in *ecstypes.DescribeServiceDeploymentsRequest) (*ecstypes.DescribeServiceDeploymentsResponse, error) {
	if n := len(in.ServiceDeploymentArns); n < 1 || n > 20 {
		return nil, invalidParam("serviceDeploymentArns must name between 1 and 20 service deployments.")
	}
	out := &ecstypes.DescribeServiceDeploymentsResponse{}
	err := s.store.View(ctx, func(tx store.ReadTx) error {
		for _, arn := range in.ServiceDeploymentArns {
			rec, _, ok, err := s.findServiceDeployment(tx, arn)
			if err != nil {
				return err
			}
			if !ok {
				out.Failures = append(out.Failures, ecstypes.Failure{Arn: arn, Reason: "MISSING"})
				continue
			}
			sd := rec.ServiceDeployment
			orEmpty(&sd.SourceServiceRevisions)
			out.ServiceDeployments = append(out.ServiceDeployments, sd)
		}
		return nil
	})
	return out, err
}

// StopServiceDeployment rolls back a service's deployment in progress to
// the last deployment that completed. ECS documents ROLLBACK as the only
// valid stopType; a deployment already stopping or rolling back continues
// as it is, and a finished one cannot be stopped.
func (s *Service) StopServiceDeployment(ctx context.Context, in *ecstypes.StopServiceDeploymentRequest) (*ecstypes.StopServiceDeploymentResponse, error) {
	switch in.StopType {
	case "", ecstypes.StopServiceDeploymentStopTypeRollback:
	default:
		return nil, invalidParam("stopType %s is not supported: the valid stopType is ROLLBACK.", in.StopType)
	}
	now := s.now()
	var svcName string
	_, err := s.store.Update(ctx, func(tx store.Tx) error {
		rec, svc, ok, err := s.findServiceDeployment(tx, in.ServiceDeploymentArn)
		if err != nil {
			return err
		}
		if !ok {
			return ecstypes.NewServiceDeploymentNotFoundException("The service deployment %s was not found.", in.ServiceDeploymentArn)
		}
		switch rec.Status {
		case ecstypes.ServiceDeploymentStatusStopRequested, ecstypes.ServiceDeploymentStatusRollbackRequested, ecstypes.ServiceDeploymentStatusRollbackInProgress:
			return nil // already stopping: it continues
		case ecstypes.ServiceDeploymentStatusPending, ecstypes.ServiceDeploymentStatusInProgress:
		default:
			return ecstypes.NewConflictException("The service deployment %s is %s: only a deployment that is PENDING or IN_PROGRESS can be stopped.", in.ServiceDeploymentArn, rec.Status)
		}
		if svc.Status != state.ServiceActive {
			return ecstypes.NewConflictException("The service deployment %s cannot be rolled back: its service is %s.", in.ServiceDeploymentArn, svc.Status)
		}
		if p := deploy.Primary(svc); p == nil || p.Id != rec.DeploymentID {
			return ecstypes.NewConflictException("The service deployment %s is no longer the service's current deployment.", in.ServiceDeploymentArn)
		}
		d, err := deploy.RollBack(tx, s.arns, svc, rec.DeploymentID, stopReason, now)
		if err != nil {
			return err
		}
		if d == nil {
			return ecstypes.NewConflictException("The service deployment %s cannot be rolled back: the service has no earlier deployment that completed.", in.ServiceDeploymentArn)
		}
		svc.Generation++
		svcName = svc.ServiceName
		return state.Put(tx, state.ServiceKey(svc.Cluster, svc.ServiceName), svc)
	})
	if err != nil {
		return nil, err
	}
	if svcName != "" {
		s.log.Info("service deployment rolled back", "service", svcName, "service_deployment_arn", in.ServiceDeploymentArn)
	}
	return &ecstypes.StopServiceDeploymentResponse{ServiceDeploymentArn: in.ServiceDeploymentArn}, nil
}

// findServiceDeployment reads the record a service deployment ARN
// (service-deployment/<cluster>/<service>/<id>) names, and its service.
// A service has few deployment records, so they are read until one matches.
func (s *Service) findServiceDeployment(tx store.ReadTx, arn string) (*state.ServiceDeployment, *state.Service, bool, error) {
	typ, rest, ok := s.arns.Resource(arn)
	if !ok || typ != "service-deployment" {
		return nil, nil, false, nil
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || !nameRE.MatchString(parts[0]) || !nameRE.MatchString(parts[1]) || parts[2] == "" {
		return nil, nil, false, nil
	}
	cluster, name := parts[0], parts[1]
	svc, ok, err := state.Get[state.Service](tx, state.ServiceKey(cluster, name))
	if err != nil || !ok {
		return nil, nil, false, err
	}
	var found *state.ServiceDeployment
	err = eachUnder(tx, state.ServiceDeploymentsKeyPrefix(cluster, name), func(rec *state.ServiceDeployment) {
		if found == nil && rec.ServiceDeploymentArn == arn {
			found = rec
		}
	})
	if err != nil || found == nil {
		return nil, nil, false, err
	}
	return found, svc, true, nil
}

// scanReverse is scan in descending key order: it walks keys under prefix
// before p.After, newest first for keys that grow with time.
func scanReverse(tx store.ReadTx, prefix string, p page, keep func(store.KV) (bool, error)) (string, error) {
	return paging.Walk(tx.ListReverse, prefix, p, keep)
}
