package ecs_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/api/ecs"
	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
	"github.com/berthdev/berth/internal/store/bolt"
)

// fixture is the ECS API over a fresh store, with a clock the test moves.
type fixture struct {
	t   *testing.T
	api *ecs.Service
	st  store.Store
	now time.Time
}

const (
	region  = "us-east-1"
	account = "000000000000"
	arnBase = "arn:aws:ecs:" + region + ":" + account + ":"
)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{t: t, st: st, now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	f.api, err = ecs.New(ecs.Config{Store: st, Region: region, Account: account, Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	f.must(f.api.CreateCluster(context.Background(), &ecstypes.CreateClusterRequest{ClusterName: "c"}))
	f.taskDef("web", "")
	return f
}

// result is a call's answer: call(f()).must(t) fails the test on an error.
type result[T any] struct {
	v   T
	err error
}

func call[T any](v T, err error) result[T] { return result[T]{v, err} }

func (r result[T]) must(t *testing.T) T {
	t.Helper()
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.v
}

func (f *fixture) must(_ any, err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

// taskDef registers a revision of family and returns its ARN.
func (f *fixture) taskDef(family string, mode ecstypes.NetworkMode) string {
	f.t.Helper()
	out := call(f.api.RegisterTaskDefinition(context.Background(), &ecstypes.RegisterTaskDefinitionRequest{
		Family: family, NetworkMode: mode,
		ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: "app", Image: "nginx", Memory: ptr[int32](64)}},
	})).must(f.t)
	return out.TaskDefinition.TaskDefinitionArn
}

// create creates service name in cluster c with desiredCount 2, after
// change edits the request.
func (f *fixture) create(name string, change ...func(*ecstypes.CreateServiceRequest)) *ecstypes.Service {
	f.t.Helper()
	req := &ecstypes.CreateServiceRequest{Cluster: "c", ServiceName: name, TaskDefinition: "web", DesiredCount: ptr[int32](2)}
	for _, c := range change {
		c(req)
	}
	return call(f.api.CreateService(context.Background(), req)).must(f.t).Service
}

func (f *fixture) update(req *ecstypes.UpdateServiceRequest) *ecstypes.Service {
	f.t.Helper()
	if req.Cluster == "" {
		req.Cluster = "c"
	}
	return call(f.api.UpdateService(context.Background(), req)).must(f.t).Service
}

// stored reads the service record, envelope included.
func (f *fixture) stored(name string) *state.Service {
	f.t.Helper()
	var svc *state.Service
	err := f.st.View(context.Background(), func(tx store.ReadTx) error {
		var ok bool
		var err error
		svc, ok, err = state.Get[state.Service](tx, state.ServiceKey("c", name))
		if err == nil && !ok {
			err = fmt.Errorf("service %q not stored", name)
		}
		return err
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return svc
}

// edit changes the stored service, as the controller would.
func (f *fixture) edit(name string, change func(tx store.Tx, svc *state.Service) error) {
	f.t.Helper()
	_, err := f.st.Update(context.Background(), func(tx store.Tx) error {
		svc, _, err := state.Get[state.Service](tx, state.ServiceKey("c", name))
		if err != nil {
			return err
		}
		if err := change(tx, svc); err != nil {
			return err
		}
		return state.Put(tx, state.ServiceKey("c", name), svc)
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) describe(refs ...string) *ecstypes.DescribeServicesResponse {
	f.t.Helper()
	return call(f.api.DescribeServices(context.Background(), &ecstypes.DescribeServicesRequest{Cluster: "c", Services: refs})).must(f.t)
}

func (f *fixture) list(req *ecstypes.ListServicesRequest) *ecstypes.ListServicesResponse {
	f.t.Helper()
	if req.Cluster == "" {
		req.Cluster = "c"
	}
	return call(f.api.ListServices(context.Background(), req)).must(f.t)
}

func ptr[T any](v T) *T { return &v }

// wantErr checks that err is the AWS error code with a message containing msg.
func wantErr(t *testing.T, err error, code, msg string) {
	t.Helper()
	var ae *awsmodel.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want %s %q", err, code, msg)
	}
	if ae.Code != code || !strings.Contains(ae.Message, msg) {
		t.Fatalf("got %s %q, want %s containing %q", ae.Code, ae.Message, code, msg)
	}
}
