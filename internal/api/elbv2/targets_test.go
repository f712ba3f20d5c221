package elbv2_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/api/elbv2"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/awsmodel/elbv2types"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// TestTargetLifecycle walks a target through the states AWS reports:
// unused while no listener uses its group, initial once one does, the data
// plane's verdicts, draining after deregistration, gone after the delay.
func TestTargetLifecycle(t *testing.T) {
	f := newFixture(t)
	tg := f.createTG("app")
	// ip is a registration on port, or on the group's port for 0.
	ip := func(id string, port int32) elbv2types.TargetDescription {
		if port == 0 {
			return elbv2types.TargetDescription{Id: id}
		}
		return elbv2types.TargetDescription{Id: id, Port: new(port)}
	}
	f.register(tg.TargetGroupArn, ip("10.0.0.1", 0), ip("172.17.0.2", 32768), ip("127.0.0.1", 0))
	want := func(step, text string) {
		t.Helper()
		if got := healthText(f.health(tg.TargetGroupArn)); got != text {
			t.Fatalf("%s:\n got %s\nwant %s", step, got, text)
		}
	}
	want("registered, unused", "10.0.0.1:8080 unused Target.NotInUse, 127.0.0.1:8080 unused Target.NotInUse, 172.17.0.2:32768 unused Target.NotInUse")
	d := f.health(tg.TargetGroupArn)[0]
	if d.HealthCheckPort != "8080" || d.TargetHealth.Description != state.DescNotInUse {
		t.Fatalf("description %+v %+v", d, d.TargetHealth)
	}

	lb := f.createLB("web")
	f.createListener(lb.LoadBalancerArn, 80, forward(tg.TargetGroupArn))
	want("in use", "10.0.0.1:8080 initial Elb.RegistrationInProgress, 127.0.0.1:8080 initial Elb.RegistrationInProgress, 172.17.0.2:32768 initial Elb.RegistrationInProgress")

	// The data plane's health checks.
	if !f.setHealth(tg.TargetGroupArn, "10.0.0.1", 8080, "healthy") || f.setHealth(tg.TargetGroupArn, "10.0.0.1", 8080, "healthy") {
		t.Fatal("a health change is written once")
	}
	_, err := f.st.Update(f.ctx, func(tx store.Tx) error {
		res, _ := arns.ParseELB(tg.TargetGroupArn)
		_, err := state.SetTargetHealth(tx, res.ID, "172.17.0.2", 32768, elbv2types.TargetHealth{
			State: "unhealthy", Reason: "Target.ResponseCodeMismatch", Description: state.ResponseCodeMismatch(502),
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want("checked", "10.0.0.1:8080 healthy, 127.0.0.1:8080 initial Elb.RegistrationInProgress, 172.17.0.2:32768 unhealthy Target.ResponseCodeMismatch")
	if d := f.health(tg.TargetGroupArn, elbv2types.TargetDescription{Id: "172.17.0.2"})[0]; d.TargetHealth.Description != "Health checks failed with these codes: [502]" {
		t.Fatalf("unhealthy description %q", d.TargetHealth.Description)
	}

	// Deregistering drains for the deregistration delay (300 s).
	must[*elbv2types.DeregisterTargetsOutput](t)(f.api.DeregisterTargets(f.ctx, &elbv2types.DeregisterTargetsInput{
		TargetGroupArn: tg.TargetGroupArn, Targets: []elbv2types.TargetDescription{{Id: "10.0.0.1"}},
	}))
	want("draining", "10.0.0.1:8080 draining Target.DeregistrationInProgress, 127.0.0.1:8080 initial Elb.RegistrationInProgress, 172.17.0.2:32768 unhealthy Target.ResponseCodeMismatch")
	if f.setHealth(tg.TargetGroupArn, "10.0.0.1", 8080, "healthy") {
		t.Fatal("a late health check revived a draining target")
	}
	f.clk.Advance(299 * time.Second)
	if got := healthText(f.health(tg.TargetGroupArn, elbv2types.TargetDescription{Id: "10.0.0.1"})); got != "10.0.0.1:8080 draining Target.DeregistrationInProgress" {
		t.Fatalf("before the delay %s", got)
	}
	f.clk.Advance(time.Second)
	// Over the delay the target is gone, before and after the reaper.
	want("drained", "127.0.0.1:8080 initial Elb.RegistrationInProgress, 172.17.0.2:32768 unhealthy Target.ResponseCodeMismatch")
	reaper := must[*elbv2.Reaper](t)(elbv2.NewReaper(elbv2.ReaperConfig{Store: f.st, Now: f.clk.Now}))
	if next := must[time.Time](t)(reaper.ReapOnce(f.ctx)); !next.IsZero() {
		t.Fatalf("next deadline %v with nothing draining", next)
	}
	if got := healthText(f.health(tg.TargetGroupArn, elbv2types.TargetDescription{Id: "10.0.0.1"})); got != "10.0.0.1:8080 unused Target.NotRegistered" {
		t.Fatalf("reaped %s", got)
	}
	if err := f.st.View(f.ctx, func(tx store.ReadTx) error {
		if n, _ := tx.Count(state.DrainingTargetsPrefix); n != 0 {
			return fmt.Errorf("%d draining index entries left", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// Registered again while draining, a target starts over.
	must[*elbv2types.DeregisterTargetsOutput](t)(f.api.DeregisterTargets(f.ctx, &elbv2types.DeregisterTargetsInput{
		TargetGroupArn: tg.TargetGroupArn, Targets: []elbv2types.TargetDescription{{Id: "127.0.0.1"}},
	}))
	f.register(tg.TargetGroupArn, ip("127.0.0.1", 0))
	want("registered again", "127.0.0.1:8080 initial Elb.RegistrationInProgress, 172.17.0.2:32768 unhealthy Target.ResponseCodeMismatch")
	// Registering a registered target again changes nothing.
	f.register(tg.TargetGroupArn, ip("172.17.0.2", 32768))
	want("registered twice", "127.0.0.1:8080 initial Elb.RegistrationInProgress, 172.17.0.2:32768 unhealthy Target.ResponseCodeMismatch")
}

func TestDeregisterImmediately(t *testing.T) {
	f := newFixture(t)
	tg := f.createTG("app")
	f.register(tg.TargetGroupArn, elbv2types.TargetDescription{Id: "10.0.0.1"}, elbv2types.TargetDescription{Id: "10.0.0.2"})
	// A target of an unused group goes at once.
	must[*elbv2types.DeregisterTargetsOutput](t)(f.api.DeregisterTargets(f.ctx, &elbv2types.DeregisterTargetsInput{
		TargetGroupArn: tg.TargetGroupArn, Targets: []elbv2types.TargetDescription{{Id: "10.0.0.1"}},
	}))
	if got := healthText(f.health(tg.TargetGroupArn)); got != "10.0.0.2:8080 unused Target.NotInUse" {
		t.Fatalf("%s", got)
	}
	// So does one of a group with no deregistration delay.
	lb := f.createLB("web")
	f.createListener(lb.LoadBalancerArn, 80, forward(tg.TargetGroupArn))
	must[*elbv2types.ModifyTargetGroupAttributesOutput](t)(f.api.ModifyTargetGroupAttributes(f.ctx, &elbv2types.ModifyTargetGroupAttributesInput{
		TargetGroupArn: tg.TargetGroupArn, Attributes: []elbv2types.TargetGroupAttribute{{Key: "deregistration_delay.timeout_seconds", Value: "0"}},
	}))
	must[*elbv2types.DeregisterTargetsOutput](t)(f.api.DeregisterTargets(f.ctx, &elbv2types.DeregisterTargetsInput{
		TargetGroupArn: tg.TargetGroupArn, Targets: []elbv2types.TargetDescription{{Id: "10.0.0.2"}},
	}))
	if got := f.health(tg.TargetGroupArn); len(got) != 0 {
		t.Fatalf("%s", healthText(got))
	}
	// A target that is not registered is no error, as in AWS.
	must[*elbv2types.DeregisterTargetsOutput](t)(f.api.DeregisterTargets(f.ctx, &elbv2types.DeregisterTargetsInput{
		TargetGroupArn: tg.TargetGroupArn, Targets: []elbv2types.TargetDescription{{Id: "10.0.0.2"}},
	}))
	_, err := f.api.DeregisterTargets(f.ctx, &elbv2types.DeregisterTargetsInput{TargetGroupArn: arnBase + "targetgroup/x/0000000000000000", Targets: []elbv2types.TargetDescription{{Id: "10.0.0.2"}}})
	wantErr(t, err, code(elbv2types.NewTargetGroupNotFoundException), "not found")
}

func TestRegisterTargetsErrors(t *testing.T) {
	f := newFixture(t)
	ipTG := f.createTG("ip")
	v6 := f.createTG("v6", func(in *elbv2types.CreateTargetGroupInput) { in.IpAddressType = "ipv6" })
	inst := f.createTG("inst", func(in *elbv2types.CreateTargetGroupInput) { in.TargetType = "instance" })
	tests := []struct {
		name   string
		tg     string
		target elbv2types.TargetDescription
		code   string
		msg    string
	}{
		{"not an ip", ipTG.TargetGroupArn, elbv2types.TargetDescription{Id: "web-1"}, code(elbv2types.NewInvalidTargetException), "not a valid IP address"},
		{"v6 in v4 group", ipTG.TargetGroupArn, elbv2types.TargetDescription{Id: "fd00::1"}, code(elbv2types.NewInvalidTargetException), "IP address type"},
		{"v4 in v6 group", v6.TargetGroupArn, elbv2types.TargetDescription{Id: "10.0.0.1"}, code(elbv2types.NewInvalidTargetException), "IP address type"},
		{"port", ipTG.TargetGroupArn, elbv2types.TargetDescription{Id: "10.0.0.1", Port: new(int32(70000))}, validationError, "from 1 to 65535"},
		{"port 0", ipTG.TargetGroupArn, elbv2types.TargetDescription{Id: "10.0.0.1", Port: new(int32(0))}, validationError, "from 1 to 65535"},
		{"unknown instance", inst.TargetGroupArn, elbv2types.TargetDescription{Id: "i-0123456789abcdef0"}, code(elbv2types.NewInvalidTargetException), "not valid instances"},
		{"instance zone", inst.TargetGroupArn, elbv2types.TargetDescription{Id: "i-0123456789abcdef0", AvailabilityZone: "us-east-1a"}, validationError, "Availability Zone"},
		{"quic", ipTG.TargetGroupArn, elbv2types.TargetDescription{Id: "10.0.0.1", QuicServerId: "0x1234567890abcdef"}, validationError, "QUIC"},
		{"unknown group", arnBase + "targetgroup/x/0000000000000000", elbv2types.TargetDescription{Id: "10.0.0.1"}, code(elbv2types.NewTargetGroupNotFoundException), "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.api.RegisterTargets(f.ctx, &elbv2types.RegisterTargetsInput{TargetGroupArn: tt.tg, Targets: []elbv2types.TargetDescription{tt.target}})
			wantErr(t, err, tt.code, tt.msg)
		})
	}
	f.register(v6.TargetGroupArn, elbv2types.TargetDescription{Id: "fd00:0::1"})
	if got := healthText(f.health(v6.TargetGroupArn)); got != "fd00::1:8080 unused Target.NotInUse" {
		t.Fatalf("IPv6 target %s", got)
	}
}

func TestTooManyTargets(t *testing.T) {
	f := newFixture(t)
	tg := f.createTG("app")
	var targets []elbv2types.TargetDescription
	for i := range 1000 {
		targets = append(targets, elbv2types.TargetDescription{Id: fmt.Sprintf("10.0.%d.%d", i/250, i%250+1)})
	}
	f.register(tg.TargetGroupArn, targets...)
	f.register(tg.TargetGroupArn, targets[0]) // already there: not one more
	_, err := f.api.RegisterTargets(f.ctx, &elbv2types.RegisterTargetsInput{TargetGroupArn: tg.TargetGroupArn, Targets: []elbv2types.TargetDescription{{Id: "10.1.0.1"}}})
	wantErr(t, err, code(elbv2types.NewTooManyTargetsException), "1000")
}

// putInstance stores a container instance as the ECS API and agents do.
func (f *fixture) putInstance(cluster, id string, attrs ...ecstypes.Attribute) string {
	f.t.Helper()
	ci := &state.ContainerInstance{ID: id, Cluster: cluster}
	ci.Ec2InstanceId = state.Ec2InstanceID(id)
	ci.Status = state.InstanceActive
	ci.Attributes = attrs
	_, err := f.st.Update(f.ctx, func(tx store.Tx) error {
		if err := tx.Put(state.InstanceIDKey(id), []byte(cluster)); err != nil {
			return err
		}
		return state.Put(tx, state.InstanceKey(cluster, id), ci)
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return ci.Ec2InstanceId
}

func TestInstanceTargets(t *testing.T) {
	f := newFixture(t)
	tg := f.createTG("inst", func(in *elbv2types.CreateTargetGroupInput) { in.TargetType = "instance" })
	local := f.putInstance("default", "0123456789abcdef0123456789abcdef")
	remote := f.putInstance("prod", "fedcba98765432100123456789abcdef", ecstypes.Attribute{Name: state.HostAddressAttribute, Value: "192.168.1.20"})
	f.register(tg.TargetGroupArn, elbv2types.TargetDescription{Id: local, Port: new(int32(32768))}, elbv2types.TargetDescription{Id: remote, Port: new(int32(32769))})
	res, _ := arns.ParseELB(tg.TargetGroupArn)
	err := f.st.View(f.ctx, func(tx store.ReadTx) error {
		for id, want := range map[string]string{local: "127.0.0.1", remote: "192.168.1.20"} {
			tt, ok, err := state.GetTarget(tx, res.ID, id, map[string]int32{local: 32768, remote: 32769}[id])
			if err != nil || !ok {
				return fmt.Errorf("target %s: %v %v", id, ok, err)
			}
			if tt.Address != want {
				return fmt.Errorf("target %s at %s, want %s", id, tt.Address, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if local != "i-0123456789abcdef0" {
		t.Fatalf("EC2-style id %s", local)
	}
}

func TestDescribeTargetHealthNamed(t *testing.T) {
	f := newFixture(t)
	tg := f.createTG("app", func(in *elbv2types.CreateTargetGroupInput) { in.HealthCheckPort = "9000" })
	f.register(tg.TargetGroupArn, elbv2types.TargetDescription{Id: "10.0.0.1"}, elbv2types.TargetDescription{Id: "10.0.0.1", Port: new(int32(81))})
	got := f.health(tg.TargetGroupArn, elbv2types.TargetDescription{Id: "10.0.0.1"}, elbv2types.TargetDescription{Id: "10.0.0.9", Port: new(int32(90))})
	if text := healthText(got); text != "10.0.0.1:8080 unused Target.NotInUse, 10.0.0.1:81 unused Target.NotInUse, 10.0.0.9:90 unused Target.NotRegistered" {
		t.Fatalf("%s", text)
	}
	if got[0].HealthCheckPort != "9000" || got[1].HealthCheckPort != "9000" || got[2].TargetHealth.Description != "Target is not registered to the target group" {
		t.Fatalf("%+v %+v", got[0], got[2].TargetHealth)
	}
	out := must[*elbv2types.DescribeTargetHealthOutput](t)(f.api.DescribeTargetHealth(f.ctx, &elbv2types.DescribeTargetHealthInput{
		TargetGroupArn: tg.TargetGroupArn, Include: []elbv2types.DescribeTargetHealthInputIncludeEnum{"AnomalyDetection"},
	}))
	if a := out.TargetHealthDescriptions[0].AnomalyDetection; a == nil || a.Result != "normal" || a.MitigationInEffect != "no" {
		t.Fatalf("anomaly detection %+v", a)
	}
	_, err := f.api.DescribeTargetHealth(f.ctx, &elbv2types.DescribeTargetHealthInput{TargetGroupArn: tg.TargetGroupArn, Targets: []elbv2types.TargetDescription{{Id: "nope"}}})
	wantErr(t, err, code(elbv2types.NewInvalidTargetException), "not a valid IP")
}

func TestReaperRun(t *testing.T) {
	f := newFixture(t)
	tg := f.createTG("app")
	lb := f.createLB("web")
	f.createListener(lb.LoadBalancerArn, 80, forward(tg.TargetGroupArn))
	f.register(tg.TargetGroupArn, elbv2types.TargetDescription{Id: "10.0.0.1"})
	tick := make(chan time.Time)
	waits := make(chan time.Duration, 16)
	reaper := must[*elbv2.Reaper](t)(elbv2.NewReaper(elbv2.ReaperConfig{Store: f.st, Now: f.clk.Now, After: func(d time.Duration) <-chan time.Time {
		waits <- d
		return tick
	}}))
	ctx, cancel := context.WithCancel(f.ctx)
	done := make(chan error)
	go func() { done <- reaper.Run(ctx) }()
	if d := <-waits; d != time.Minute {
		t.Fatalf("idle wait %v", d)
	}
	// A deregistration wakes it to wait for the target's deadline.
	must[*elbv2types.DeregisterTargetsOutput](t)(f.api.DeregisterTargets(f.ctx, &elbv2types.DeregisterTargetsInput{
		TargetGroupArn: tg.TargetGroupArn, Targets: []elbv2types.TargetDescription{{Id: "10.0.0.1"}},
	}))
	if d := <-waits; d != time.Minute { // the deadline is 300 s away: the cap applies
		t.Fatalf("wait after deregistration %v", d)
	}
	f.clk.Advance(300 * time.Second)
	tick <- time.Time{}
	if d := <-waits; d != time.Minute {
		t.Fatalf("wait after reaping %v", d)
	}
	err := f.st.View(f.ctx, func(tx store.ReadTx) error {
		if n, _ := tx.Count(state.TargetsPrefix); n != 0 {
			return fmt.Errorf("%d targets left", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
