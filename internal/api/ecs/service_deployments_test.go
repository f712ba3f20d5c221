package ecs_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/deploy"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

func (f *fixture) deployments(req *ecstypes.ListServiceDeploymentsRequest) *ecstypes.ListServiceDeploymentsResponse {
	f.t.Helper()
	if req.Cluster == "" {
		req.Cluster = "c"
	}
	return call(f.api.ListServiceDeployments(context.Background(), req)).must(f.t)
}

func (f *fixture) describeDeployment(arn string) ecstypes.ServiceDeployment {
	f.t.Helper()
	out := call(f.api.DescribeServiceDeployments(context.Background(), &ecstypes.DescribeServiceDeploymentsRequest{ServiceDeploymentArns: []string{arn}})).must(f.t)
	if len(out.ServiceDeployments) != 1 {
		f.t.Fatalf("%s: %+v", arn, out)
	}
	return out.ServiceDeployments[0]
}

// complete does what the controller does when a service's PRIMARY
// deployment reaches its desired count: the deployment COMPLETED, its
// record SUCCESSFUL, and it becomes where a rollback goes.
func (f *fixture) complete(name string) {
	f.t.Helper()
	f.edit(name, func(tx store.Tx, svc *state.Service) error {
		d := deploy.Primary(svc)
		d.RolloutState = ecstypes.DeploymentRolloutStateCompleted
		ds := svc.Deploys[d.Id]
		svc.LastStable = &state.StableDeployment{ID: d.Id, TaskDefinition: d.TaskDefinition, ServiceDeploymentArn: ds.ServiceDeploymentArn, RevisionArn: ds.RevisionArn}
		return deploy.Finish(tx, svc, d.Id, ecstypes.ServiceDeploymentStatusSuccessful, deploy.CompletedReason(d.Id), f.now)
	})
}

func TestListServiceDeployments(t *testing.T) {
	f := newFixture(t)
	start := f.now
	first := f.create("api")
	f.complete("api")
	var arns []string // newest first
	for range 3 {
		f.now = f.now.Add(time.Minute)
		arns = append([]string{f.update(&ecstypes.UpdateServiceRequest{Service: "api", ForceNewDeployment: true}).CurrentServiceDeployment}, arns...)
	}
	arns = append(arns, first.CurrentServiceDeployment)
	f.create("other")

	all := f.deployments(&ecstypes.ListServiceDeploymentsRequest{Service: "api"})
	if len(all.ServiceDeployments) != 4 || all.NextToken != "" {
		t.Fatalf("%d deployments, token %q", len(all.ServiceDeployments), all.NextToken)
	}
	b := all.ServiceDeployments[3]
	if b.ServiceDeploymentArn != first.CurrentServiceDeployment || b.Status != ecstypes.ServiceDeploymentStatusSuccessful ||
		b.ServiceArn != first.ServiceArn || b.ClusterArn != first.ClusterArn || !b.CreatedAt.Equal(start) || b.FinishedAt == nil ||
		!strings.HasPrefix(b.TargetServiceRevisionArn, arnBase+"service-revision/c/api/") {
		t.Errorf("oldest = %+v", b)
	}

	// One at a time, newest first.
	var paged []string
	token := ""
	for range 5 {
		page := f.deployments(&ecstypes.ListServiceDeploymentsRequest{Service: "api", MaxResults: ptr[int32](1), NextToken: token})
		for _, d := range page.ServiceDeployments {
			paged = append(paged, d.ServiceDeploymentArn)
		}
		if token = page.NextToken; token == "" {
			break
		}
	}
	if strings.Join(paged, " ") != strings.Join(arns, " ") {
		t.Errorf("paged = %v\nwant    %v", paged, arns)
	}

	filters := []struct {
		name string
		req  ecstypes.ListServiceDeploymentsRequest
		want []string
	}{
		{"IN_PROGRESS", ecstypes.ListServiceDeploymentsRequest{Status: []ecstypes.ServiceDeploymentStatus{ecstypes.ServiceDeploymentStatusInProgress}}, arns[:1]},
		{"SUCCESSFUL or STOPPED", ecstypes.ListServiceDeploymentsRequest{Status: []ecstypes.ServiceDeploymentStatus{"SUCCESSFUL", "STOPPED"}}, arns[1:]},
		{"created after", ecstypes.ListServiceDeploymentsRequest{CreatedAt: &ecstypes.CreatedAt{After: awsmodel.NewTime(start.Add(90 * time.Second))}}, arns[:2]},
		{"created before", ecstypes.ListServiceDeploymentsRequest{CreatedAt: &ecstypes.CreatedAt{Before: awsmodel.NewTime(start.Add(90 * time.Second))}}, arns[2:]},
		{"created between", ecstypes.ListServiceDeploymentsRequest{CreatedAt: &ecstypes.CreatedAt{After: awsmodel.NewTime(start.Add(30 * time.Second)), Before: awsmodel.NewTime(start.Add(90 * time.Second))}}, arns[2:3]},
	}
	for _, tt := range filters {
		tt.req.Service = "api"
		var got []string
		for _, d := range f.deployments(&tt.req).ServiceDeployments {
			got = append(got, d.ServiceDeploymentArn)
		}
		if strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}

	otherToken := f.deployments(&ecstypes.ListServiceDeploymentsRequest{Service: "api", MaxResults: ptr[int32](1)}).NextToken
	errs := []struct {
		name      string
		req       ecstypes.ListServiceDeploymentsRequest
		code, msg string
	}{
		{"unknown service", ecstypes.ListServiceDeploymentsRequest{Cluster: "c", Service: "nope"}, "ServiceNotFoundException", "Service not found."},
		{"unknown cluster", ecstypes.ListServiceDeploymentsRequest{Cluster: "nope", Service: "api"}, "ClusterNotFoundException", "Cluster not found."},
		{"maxResults 0", ecstypes.ListServiceDeploymentsRequest{Cluster: "c", Service: "api", MaxResults: ptr[int32](0)}, "InvalidParameterException", "maxResults must be between 1 and 100."},
		{"another service's token", ecstypes.ListServiceDeploymentsRequest{Cluster: "c", Service: "other", NextToken: otherToken}, "InvalidParameterException", "nextToken is not valid"},
	}
	for _, tt := range errs {
		_, err := f.api.ListServiceDeployments(context.Background(), &tt.req)
		wantErr(t, err, tt.code, tt.msg)
	}
}

func TestDescribeServiceDeployments(t *testing.T) {
	f := newFixture(t)
	svc := f.create("api", func(r *ecstypes.CreateServiceRequest) {
		r.DeploymentConfiguration = &ecstypes.DeploymentConfiguration{DeploymentCircuitBreaker: &ecstypes.DeploymentCircuitBreaker{Enable: true}}
	})
	missing := arnBase + "service-deployment/c/api/AAAAAAAAAAAAAAAAAAAAA"
	foreign := "arn:aws:ecs:eu-west-1:111111111111:service-deployment/c/api/AAAAAAAAAAAAAAAAAAAAA"
	out := call(f.api.DescribeServiceDeployments(context.Background(), &ecstypes.DescribeServiceDeploymentsRequest{
		ServiceDeploymentArns: []string{svc.CurrentServiceDeployment, missing, foreign, "garbage"},
	})).must(t)
	if len(out.ServiceDeployments) != 1 || len(out.Failures) != 3 || out.Failures[0] != (ecstypes.Failure{Arn: missing, Reason: "MISSING"}) {
		t.Fatalf("out = %+v", out)
	}
	sd := out.ServiceDeployments[0]
	if sd.ServiceDeploymentArn != svc.CurrentServiceDeployment || sd.Status != ecstypes.ServiceDeploymentStatusInProgress ||
		sd.TargetServiceRevision == nil || sd.TargetServiceRevision.RequestedTaskCount != 2 ||
		sd.DeploymentCircuitBreaker == nil || sd.DeploymentCircuitBreaker.Status != "MONITORING" || sd.DeploymentCircuitBreaker.Threshold != 3 ||
		sd.DeploymentConfiguration == nil || *sd.DeploymentConfiguration.MaximumPercent != 200 {
		t.Errorf("deployment = %+v", sd)
	}
	b, _ := json.Marshal(sd)
	if strings.Contains(string(b), "berth") || !strings.Contains(string(b), `"sourceServiceRevisions":[]`) {
		t.Errorf("wire shape: %s", b)
	}

	for _, n := range []int{0, 21} {
		_, err := f.api.DescribeServiceDeployments(context.Background(), &ecstypes.DescribeServiceDeploymentsRequest{ServiceDeploymentArns: make([]string, n)})
		wantErr(t, err, "InvalidParameterException", "between 1 and 20")
	}
}

func TestStopServiceDeploymentRollsBack(t *testing.T) {
	f := newFixture(t)
	first := f.create("api")
	f.complete("api")
	f.taskDef("web", "")
	f.now = f.now.Add(time.Minute)
	bad := f.update(&ecstypes.UpdateServiceRequest{Service: "api", TaskDefinition: "web:2"})
	gen := f.stored("api").Generation

	f.now = f.now.Add(time.Minute)
	out := call(f.api.StopServiceDeployment(context.Background(), &ecstypes.StopServiceDeploymentRequest{ServiceDeploymentArn: bad.CurrentServiceDeployment})).must(t)
	if out.ServiceDeploymentArn != bad.CurrentServiceDeployment {
		t.Errorf("answered %q", out.ServiceDeploymentArn)
	}

	got := f.describe("api").Services[0]
	if got.TaskDefinition != first.TaskDefinition || len(got.Deployments) != 3 || got.Deployments[0].Status != "PRIMARY" ||
		got.Deployments[0].TaskDefinition != first.TaskDefinition || got.Deployments[1].TaskDefinition != bad.TaskDefinition || got.Deployments[1].Status != "ACTIVE" {
		t.Errorf("after the stop: taskDefinition %s, deployments %+v", got.TaskDefinition, got.Deployments)
	}
	// The stopped deployment's own record tracks the rollback.
	if got.CurrentServiceDeployment != bad.CurrentServiceDeployment {
		t.Errorf("currentServiceDeployment = %s, want the rolled back one's record", got.CurrentServiceDeployment)
	}
	rec := f.describeDeployment(bad.CurrentServiceDeployment)
	if rec.Status != ecstypes.ServiceDeploymentStatusRollbackInProgress || rec.Rollback == nil ||
		rec.Rollback.Reason != "Service deployment rolled back because of a stop request." || !rec.Rollback.StartedAt.Equal(f.now) {
		t.Errorf("record = %+v rollback %+v", rec, rec.Rollback)
	}
	if stored := f.stored("api"); stored.Generation != gen+1 || stored.Steady {
		t.Errorf("generation %d (was %d), steady %v", stored.Generation, gen, stored.Steady)
	}
	if n := len(f.deployments(&ecstypes.ListServiceDeploymentsRequest{Service: "api"}).ServiceDeployments); n != 2 {
		t.Errorf("%d service deployments, want 2 (a rollback reuses the record)", n)
	}

	// Stopping it again: the rollback continues.
	call(f.api.StopServiceDeployment(context.Background(), &ecstypes.StopServiceDeploymentRequest{ServiceDeploymentArn: bad.CurrentServiceDeployment, StopType: ecstypes.StopServiceDeploymentStopTypeRollback})).must(t)
	if g := f.stored("api").Generation; g != gen+1 {
		t.Errorf("a second stop changed the service (generation %d)", g)
	}
	// A deployment that finished cannot be stopped.
	_, err := f.api.StopServiceDeployment(context.Background(), &ecstypes.StopServiceDeploymentRequest{ServiceDeploymentArn: first.CurrentServiceDeployment})
	wantErr(t, err, "ConflictException", "is SUCCESSFUL")
}

func TestStopServiceDeploymentErrors(t *testing.T) {
	f := newFixture(t)
	only := f.create("only")
	f.create("draining")
	f.complete("draining")
	next := f.update(&ecstypes.UpdateServiceRequest{Service: "draining", ForceNewDeployment: true})
	f.must(f.api.DeleteService(context.Background(), &ecstypes.DeleteServiceRequest{Cluster: "c", Service: "draining", Force: ptr(true)}))

	tests := []struct {
		name      string
		req       ecstypes.StopServiceDeploymentRequest
		code, msg string
	}{
		{"nothing to roll back to", ecstypes.StopServiceDeploymentRequest{ServiceDeploymentArn: only.CurrentServiceDeployment}, "ConflictException", "no earlier deployment that completed"},
		{"service DRAINING", ecstypes.StopServiceDeploymentRequest{ServiceDeploymentArn: next.CurrentServiceDeployment}, "ConflictException", "its service is DRAINING"},
		{"ABORT", ecstypes.StopServiceDeploymentRequest{ServiceDeploymentArn: only.CurrentServiceDeployment, StopType: ecstypes.StopServiceDeploymentStopTypeAbort}, "InvalidParameterException", "the valid stopType is ROLLBACK"},
		{"unknown", ecstypes.StopServiceDeploymentRequest{ServiceDeploymentArn: arnBase + "service-deployment/c/only/AAAAAAAAAAAAAAAAAAAAA"}, "ServiceDeploymentNotFoundException", "was not found"},
		{"not an ARN", ecstypes.StopServiceDeploymentRequest{ServiceDeploymentArn: "only"}, "ServiceDeploymentNotFoundException", "was not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.api.StopServiceDeployment(context.Background(), &tt.req)
			wantErr(t, err, tt.code, tt.msg)
		})
	}
	if rec := f.describeDeployment(only.CurrentServiceDeployment); rec.Status != ecstypes.ServiceDeploymentStatusInProgress {
		t.Errorf("a refused stop changed the record: %s", rec.Status)
	}
	if g := f.stored("only").Generation; g != 1 {
		t.Errorf("a refused stop changed the service: generation %d", g)
	}
}
