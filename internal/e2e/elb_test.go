package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

// elbClient is an ELBv2 client signed with the admin key.
func (b *berth) elbClient() *elb.Client {
	return elb.NewFromConfig(awsConfig(b.endpoint, b.key.AccessKeyID, b.key.SecretAccessKey, ""))
}

// backend is an HTTP server on loopback that names itself and whose
// health check can be made to fail.
type backend struct {
	name   string
	srv    *httptest.Server
	failHC atomic.Bool
}

func newBackend(t *testing.T, name string) *backend {
	b := &backend{name: name}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" && b.failHC.Load() {
			http.Error(w, "sick", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%s %s xff=%s proto=%s", b.name, r.URL.Path, r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"))
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) target() elbtypes.TargetDescription {
	host, port, _ := net.SplitHostPort(b.srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	return elbtypes.TargetDescription{Id: aws.String(host), Port: aws.Int32(int32(p))}
}

// lbGet GETs path through the load balancer with an optional Host header.
func lbGet(t *testing.T, base, host, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", base, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestLoadBalancerRoutesAndChecksHealth configures an application load
// balancer with the SDK in front of three backends on this host: it serves
// from all three, routes by path and host, reports health as
// DescribeTargetHealth, and takes a backend that fails its health checks
// out of rotation.
func TestLoadBalancerRoutesAndChecksHealth(t *testing.T) {
	b := startBerth(t)
	c := b.elbClient()
	backends := []*backend{newBackend(t, "one"), newBackend(t, "two"), newBackend(t, "three")}
	api := newBackend(t, "api")

	lbOut := must[*elb.CreateLoadBalancerOutput](t)(c.CreateLoadBalancer(ctx(t), &elb.CreateLoadBalancerInput{Name: aws.String("web")}))
	lbd := lbOut.LoadBalancers[0]
	tg := func(name string, targets ...*backend) string {
		out := must[*elb.CreateTargetGroupOutput](t)(c.CreateTargetGroup(ctx(t), &elb.CreateTargetGroupInput{
			Name: aws.String(name), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80), TargetType: elbtypes.TargetTypeEnumIp,
			VpcId: aws.String("vpc-berth"), HealthCheckPath: aws.String("/health"), HealthCheckIntervalSeconds: aws.Int32(5),
			HealthCheckTimeoutSeconds: aws.Int32(2), UnhealthyThresholdCount: aws.Int32(2),
		}))
		arn := out.TargetGroups[0].TargetGroupArn
		var ds []elbtypes.TargetDescription
		for _, be := range targets {
			ds = append(ds, be.target())
		}
		must[*elb.RegisterTargetsOutput](t)(c.RegisterTargets(ctx(t), &elb.RegisterTargetsInput{TargetGroupArn: arn, Targets: ds}))
		return aws.ToString(arn)
	}
	webTG := tg("web", backends...)
	apiTG := tg("api", api)
	port := freePort(t)
	_, p, _ := net.SplitHostPort(port)
	pn, _ := strconv.Atoi(p)
	ln := must[*elb.CreateListenerOutput](t)(c.CreateListener(ctx(t), &elb.CreateListenerInput{
		LoadBalancerArn: lbd.LoadBalancerArn, Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(int32(pn)),
		DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: aws.String(webTG)}},
	}))
	listener := ln.Listeners[0].ListenerArn
	must[*elb.CreateRuleOutput](t)(c.CreateRule(ctx(t), &elb.CreateRuleInput{
		ListenerArn: listener, Priority: aws.Int32(10),
		Conditions: []elbtypes.RuleCondition{{Field: aws.String("path-pattern"), Values: []string{"/api/*"}}},
		Actions:    []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: aws.String(apiTG)}},
	}))
	must[*elb.CreateRuleOutput](t)(c.CreateRule(ctx(t), &elb.CreateRuleInput{
		ListenerArn: listener, Priority: aws.Int32(20),
		Conditions: []elbtypes.RuleCondition{{Field: aws.String("host-header"), HostHeaderConfig: &elbtypes.HostHeaderConditionConfig{Values: []string{"admin.*"}}}},
		Actions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumFixedResponse, FixedResponseConfig: &elbtypes.FixedResponseActionConfig{
			StatusCode: aws.String("403"), ContentType: aws.String("text/plain"), MessageBody: aws.String("no admin here")}}},
	}))

	// The load balancer becomes active (the SDK's own waiter), and its DNS
	// name resolves to the address its listeners bind where Berth may keep
	// the hosts file.
	waiter := elb.NewLoadBalancerAvailableWaiter(c, func(o *elb.LoadBalancerAvailableWaiterOptions) { o.MinDelay = 100e6; o.MaxDelay = 500e6 })
	if err := waiter.Wait(ctx(t), &elb.DescribeLoadBalancersInput{LoadBalancerArns: []string{aws.ToString(lbd.LoadBalancerArn)}}, 20e9); err != nil {
		t.Fatalf("load balancer did not become available: %v", err)
	}
	host := ""
	if addrs, err := net.LookupHost(aws.ToString(lbd.DNSName)); err == nil && len(addrs) > 0 {
		host = addrs[0]
	} else {
		t.Logf("%s does not resolve here (%v); dialing the load balancer's address", aws.ToString(lbd.DNSName), err)
		host = lbAddressOf(t, b, aws.ToString(lbd.LoadBalancerName))
	}
	base := fmt.Sprintf("http://%s:%d", host, pn)

	// Health checks pass: every target healthy.
	eventually(t, "three healthy targets", func() bool { return healthyTargets(t, c, webTG) == 3 })
	seen := map[string]bool{}
	for range 30 {
		code, body := lbGet(t, base, "", "/")
		if code != 200 {
			t.Fatalf("GET /: %d %s", code, body)
		}
		seen[strings.Fields(body)[0]] = true
		if !strings.Contains(body, "xff=127.0.0.1") || !strings.Contains(body, "proto=http") {
			t.Fatalf("forwarding headers missing: %s", body)
		}
	}
	if len(seen) != 3 {
		t.Fatalf("served by %v, want all three backends", seen)
	}
	// Configuration reaches the data plane within moments of the call that
	// made it, as with ALB.
	eventually(t, "the path rule routes", func() bool {
		_, body := lbGet(t, base, "", "/api/users")
		return strings.HasPrefix(body, "api /api/users")
	})
	eventually(t, "the host rule answers", func() bool {
		code, body := lbGet(t, base, "admin.example.com", "/")
		return code == 403 && body == "no admin here"
	})

	// The AWS CLI sees and changes the same configuration: a rule added
	// with it routes at once, and describe-target-health agrees.
	cli := newCLI(t, b)
	rule := cli.ok("elbv2", "create-rule", "--listener-arn", aws.ToString(listener), "--priority", "5",
		"--conditions", "Field=http-request-method,HttpRequestMethodConfig={Values=[DELETE]}",
		"--actions", "Type=fixed-response,FixedResponseConfig={StatusCode=405,ContentType=text/plain,MessageBody=read-only}")
	if path(rule, "Rules", 0, "Priority") != "5" {
		t.Fatalf("create-rule: %v", rule)
	}
	eventually(t, "the CLI's rule routes", func() bool {
		req, _ := http.NewRequest(http.MethodDelete, base+"/x", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusMethodNotAllowed
	})
	th := cli.ok("elbv2", "describe-target-health", "--target-group-arn", webTG)
	if descs, _ := path(th, "TargetHealthDescriptions").([]any); len(descs) != 3 || path(th, "TargetHealthDescriptions", 0, "TargetHealth", "State") != "healthy" {
		t.Fatalf("describe-target-health: %v", th)
	}

	// A backend that fails its health checks is reported and skipped.
	backends[1].failHC.Store(true)
	var why elbtypes.TargetHealth
	eventually(t, "backend two unhealthy", func() bool {
		h := must[*elb.DescribeTargetHealthOutput](t)(c.DescribeTargetHealth(ctx(t), &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(webTG), Targets: []elbtypes.TargetDescription{backends[1].target()}}))
		why = *h.TargetHealthDescriptions[0].TargetHealth
		return why.State == elbtypes.TargetHealthStateEnumUnhealthy
	})
	if why.Reason != elbtypes.TargetHealthReasonEnumResponseCodeMismatch || aws.ToString(why.Description) != "Health checks failed with these codes: [500]" {
		t.Fatalf("unhealthy reason %s %q", why.Reason, aws.ToString(why.Description))
	}
	for range 20 {
		if _, body := lbGet(t, base, "", "/"); strings.HasPrefix(body, "two ") {
			t.Fatal("an unhealthy target still gets requests")
		}
	}
}

// healthyTargets counts the healthy targets of a group.
func healthyTargets(t *testing.T, c *elb.Client, tg string) int {
	h := must[*elb.DescribeTargetHealthOutput](t)(c.DescribeTargetHealth(ctx(t), &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tg)}))
	n := 0
	for _, d := range h.TargetHealthDescriptions {
		if d.TargetHealth != nil && d.TargetHealth.State == elbtypes.TargetHealthStateEnumHealthy {
			n++
		}
	}
	return n
}

// lbAddressOf reads the loopback address Berth gave a load balancer.
func lbAddressOf(t *testing.T, b *berth, name string) string {
	t.Helper()
	addr, err := b.cp.LoadBalancerAddress(ctx(t), name)
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// TestLoadBalancerListenerThatCannotBind: a listener whose port is taken
// leaves its load balancer active_impaired with the reason, and the load
// balancer becomes active once the port is free and the listener changes.
func TestLoadBalancerListenerThatCannotBind(t *testing.T) {
	b := startBerth(t)
	c := b.elbClient()
	lbd := must[*elb.CreateLoadBalancerOutput](t)(c.CreateLoadBalancer(ctx(t), &elb.CreateLoadBalancerInput{Name: aws.String("busy")})).LoadBalancers[0]
	tg := must[*elb.CreateTargetGroupOutput](t)(c.CreateTargetGroup(ctx(t), &elb.CreateTargetGroupInput{
		Name: aws.String("busy"), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80), TargetType: elbtypes.TargetTypeEnumIp, VpcId: aws.String("vpc-berth"),
	})).TargetGroups[0]
	taken, err := net.Listen("tcp", net.JoinHostPort(lbAddressOf(t, b, "busy"), "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := int32(taken.Addr().(*net.TCPAddr).Port)
	ln := must[*elb.CreateListenerOutput](t)(c.CreateListener(ctx(t), &elb.CreateListenerInput{
		LoadBalancerArn: lbd.LoadBalancerArn, Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(port),
		DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: tg.TargetGroupArn}},
	})).Listeners[0]
	lbState := func() elbtypes.LoadBalancerState {
		out := must[*elb.DescribeLoadBalancersOutput](t)(c.DescribeLoadBalancers(ctx(t), &elb.DescribeLoadBalancersInput{Names: []string{"busy"}}))
		return *out.LoadBalancers[0].State
	}
	eventually(t, "active_impaired", func() bool { return lbState().Code == elbtypes.LoadBalancerStateEnumActiveImpaired })
	if reason := aws.ToString(lbState().Reason); !strings.Contains(reason, strconv.Itoa(int(port))) {
		t.Fatalf("reason %q does not name the port", reason)
	}
	taken.Close()
	must[*elb.ModifyListenerOutput](t)(c.ModifyListener(ctx(t), &elb.ModifyListenerInput{ListenerArn: ln.ListenerArn, Port: aws.Int32(port)}))
	eventually(t, "active", func() bool { return lbState().Code == elbtypes.LoadBalancerStateEnumActive })
}

// TestLoadBalancerStickiness turns on duration-based stickiness with
// ModifyTargetGroupAttributes: the load balancer's responses then carry
// the AWSALB cookie, and requests that send it back stay on one target
// while the others are spread over all three.
func TestLoadBalancerStickiness(t *testing.T) {
	b := startBerth(t)
	c := b.elbClient()
	backends := []*backend{newBackend(t, "one"), newBackend(t, "two"), newBackend(t, "three")}
	lbd := must[*elb.CreateLoadBalancerOutput](t)(c.CreateLoadBalancer(ctx(t), &elb.CreateLoadBalancerInput{Name: aws.String("sticky")})).LoadBalancers[0]
	tg := must[*elb.CreateTargetGroupOutput](t)(c.CreateTargetGroup(ctx(t), &elb.CreateTargetGroupInput{
		Name: aws.String("sticky"), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80), TargetType: elbtypes.TargetTypeEnumIp,
		VpcId: aws.String("vpc-berth"), HealthCheckPath: aws.String("/health"), HealthCheckIntervalSeconds: aws.Int32(5),
		HealthCheckTimeoutSeconds: aws.Int32(2),
	})).TargetGroups[0].TargetGroupArn
	var ds []elbtypes.TargetDescription
	for _, be := range backends {
		ds = append(ds, be.target())
	}
	must[*elb.RegisterTargetsOutput](t)(c.RegisterTargets(ctx(t), &elb.RegisterTargetsInput{TargetGroupArn: tg, Targets: ds}))
	port := freePortNumber(t)
	must[*elb.CreateListenerOutput](t)(c.CreateListener(ctx(t), &elb.CreateListenerInput{
		LoadBalancerArn: lbd.LoadBalancerArn, Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(int32(port)),
		DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: tg}},
	}))
	base := fmt.Sprintf("http://%s:%d/", lbAddressOf(t, b, "sticky"), port)
	eventually(t, "three healthy targets", func() bool { return healthyTargets(t, c, aws.ToString(tg)) == 3 })

	must[*elb.ModifyTargetGroupAttributesOutput](t)(c.ModifyTargetGroupAttributes(ctx(t), &elb.ModifyTargetGroupAttributesInput{
		TargetGroupArn: tg, Attributes: []elbtypes.TargetGroupAttribute{
			{Key: aws.String("stickiness.enabled"), Value: aws.String("true")},
			{Key: aws.String("stickiness.type"), Value: aws.String("lb_cookie")},
			{Key: aws.String("stickiness.lb_cookie.duration_seconds"), Value: aws.String("600")},
		},
	}))
	// send GETs / with an optional Cookie header and returns the target
	// that answered and the AWSALB cookie set.
	send := func(cookie string) (string, *http.Cookie) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base, nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", base, resp.StatusCode, body)
		}
		for _, c := range resp.Cookies() {
			if c.Name == "AWSALB" {
				return strings.Fields(string(body))[0], c
			}
		}
		return strings.Fields(string(body))[0], nil
	}
	var stuck string
	var cookie *http.Cookie
	eventually(t, "the AWSALB cookie", func() bool {
		stuck, cookie = send("")
		return cookie != nil
	})
	if cookie.Expires.Before(time.Now().Add(9*time.Minute)) || strings.Contains(cookie.Value, "127.0.0.1") {
		t.Fatalf("AWSALB=%s expires %v: want an opaque value good for 10 minutes", cookie.Value, cookie.Expires)
	}
	seen := map[string]bool{}
	for range 12 {
		if got, _ := send("AWSALB=" + cookie.Value); got != stuck {
			t.Fatalf("with the cookie: served by %s, want %s", got, stuck)
		}
		got, _ := send("")
		seen[got] = true
	}
	if len(seen) != 3 {
		t.Fatalf("without the cookie: served by %v, want all three", seen)
	}
}
