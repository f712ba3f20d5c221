package elbv2_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/api/elbv2"
	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/elbv2types"
	"github.com/berthdev/berth/internal/clocktest"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
	"github.com/berthdev/berth/internal/store/bolt"
)

const (
	region  = "us-east-1"
	account = "000000000000"
	arnBase = "arn:aws:elasticloadbalancing:" + region + ":" + account + ":"
)

var arns = state.ARNs{Region: region, Account: account}

type clock = clocktest.Clock

// seeded is a deterministic source of ids.
type seeded struct {
	mu sync.Mutex
	r  *rand.ChaCha8
}

func (s *seeded) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.r.Read(p)
}

// fixture is the ELBv2 API over a bolt store in a temp dir.
type fixture struct {
	t       testing.TB
	api     *elbv2.Service
	st      store.Store
	clk     *clock
	ctx     context.Context
	certDir string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	st, err := bolt.Open(filepath.Join(dir, "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := clocktest.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	certDir := filepath.Join(dir, "certificates")
	api, err := elbv2.New(elbv2.Config{
		Store: st, Region: region, Account: account, CertificateDir: certDir,
		Now: clk.Now, Rand: &seeded{r: rand.NewChaCha8([32]byte{1})},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, api: api, st: st, clk: clk, ctx: context.Background(), certDir: certDir}
}

// call runs op through the generated dispatcher with a JSON rendering of
// the input: decoding and model validation, then the handler.
func (f *fixture) call(op string, body any) (any, error) {
	b, err := json.Marshal(body)
	if err != nil {
		f.t.Fatal(err)
	}
	return elbv2types.Dispatch(f.ctx, f.api, op, b)
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// code is the wire code of a generated exception.
func code(ctor func(string, ...any) *awsmodel.APIError) string { return ctor("").Code }

const validationError = "ValidationError"

// wantErr checks that err is the AWS error code with a message containing msg.
func wantErr(t testing.TB, err error, code, msg string) {
	t.Helper()
	var ae *awsmodel.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want %s %q", err, code, msg)
	}
	if ae.Code != code || !strings.Contains(ae.Message, msg) {
		t.Fatalf("got %s %q, want %s containing %q", ae.Code, ae.Message, code, msg)
	}
}

func (f *fixture) createLB(name string, change ...func(*elbv2types.CreateLoadBalancerInput)) elbv2types.LoadBalancer {
	f.t.Helper()
	in := &elbv2types.CreateLoadBalancerInput{Name: name, Subnets: []string{"subnet-1", "subnet-2"}}
	for _, c := range change {
		c(in)
	}
	return must[*elbv2types.CreateLoadBalancerOutput](f.t)(f.api.CreateLoadBalancer(f.ctx, in)).LoadBalancers[0]
}

func (f *fixture) createTG(name string, change ...func(*elbv2types.CreateTargetGroupInput)) elbv2types.TargetGroup {
	f.t.Helper()
	in := &elbv2types.CreateTargetGroupInput{Name: name, Protocol: "HTTP", Port: new(int32(8080)), VpcId: "vpc-1", TargetType: "ip"}
	for _, c := range change {
		c(in)
	}
	return must[*elbv2types.CreateTargetGroupOutput](f.t)(f.api.CreateTargetGroup(f.ctx, in)).TargetGroups[0]
}

func forward(tgArn string) []elbv2types.Action {
	return []elbv2types.Action{{Type: "forward", TargetGroupArn: tgArn}}
}

func fixed(status string) []elbv2types.Action {
	return []elbv2types.Action{{Type: "fixed-response", FixedResponseConfig: &elbv2types.FixedResponseActionConfig{StatusCode: status}}}
}

func (f *fixture) createListener(lbArn string, port int32, actions []elbv2types.Action) elbv2types.Listener {
	f.t.Helper()
	return must[*elbv2types.CreateListenerOutput](f.t)(f.api.CreateListener(f.ctx, &elbv2types.CreateListenerInput{
		LoadBalancerArn: lbArn, Protocol: "HTTP", Port: new(port), DefaultActions: actions,
	})).Listeners[0]
}

func pathIs(pattern string) []elbv2types.RuleCondition {
	return []elbv2types.RuleCondition{{Field: "path-pattern", Values: []string{pattern}}}
}

func (f *fixture) createRule(listenerArn string, priority int32, conds []elbv2types.RuleCondition, actions []elbv2types.Action) elbv2types.Rule {
	f.t.Helper()
	return must[*elbv2types.CreateRuleOutput](f.t)(f.api.CreateRule(f.ctx, &elbv2types.CreateRuleInput{
		ListenerArn: listenerArn, Priority: new(priority), Conditions: conds, Actions: actions,
	})).Rules[0]
}

func (f *fixture) register(tgArn string, targets ...elbv2types.TargetDescription) {
	f.t.Helper()
	must[*elbv2types.RegisterTargetsOutput](f.t)(f.api.RegisterTargets(f.ctx, &elbv2types.RegisterTargetsInput{TargetGroupArn: tgArn, Targets: targets}))
}

func (f *fixture) health(tgArn string, targets ...elbv2types.TargetDescription) []elbv2types.TargetHealthDescription {
	f.t.Helper()
	return must[*elbv2types.DescribeTargetHealthOutput](f.t)(f.api.DescribeTargetHealth(f.ctx, &elbv2types.DescribeTargetHealthInput{TargetGroupArn: tgArn, Targets: targets})).TargetHealthDescriptions
}

func (f *fixture) describeTG(arn string) elbv2types.TargetGroup {
	f.t.Helper()
	return must[*elbv2types.DescribeTargetGroupsOutput](f.t)(f.api.DescribeTargetGroups(f.ctx, &elbv2types.DescribeTargetGroupsInput{TargetGroupArns: []string{arn}})).TargetGroups[0]
}

func (f *fixture) rules(listenerArn string) []elbv2types.Rule {
	f.t.Helper()
	return must[*elbv2types.DescribeRulesOutput](f.t)(f.api.DescribeRules(f.ctx, &elbv2types.DescribeRulesInput{ListenerArn: listenerArn})).Rules
}

// healthText renders target health descriptions for comparison:
// "id:port state reason".
func healthText(ds []elbv2types.TargetHealthDescription) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, strings.TrimSpace(fmt.Sprintf("%s:%d %s %s", d.Target.Id, awsmodel.Value(d.Target.Port), d.TargetHealth.State, d.TargetHealth.Reason)))
	}
	return strings.Join(parts, ", ")
}

// setHealth writes a health verdict as the data plane does.
func (f *fixture) setHealth(tgArn, id string, port int32, h elbv2types.TargetHealthStateEnum) bool {
	f.t.Helper()
	res, _ := arns.ParseELB(tgArn)
	var changed bool
	_, err := f.st.Update(f.ctx, func(tx store.Tx) error {
		var err error
		changed, err = state.SetTargetHealth(tx, res.ID, id, port, elbv2types.TargetHealth{State: h})
		return err
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return changed
}
