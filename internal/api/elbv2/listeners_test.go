package elbv2_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/awsmodel/elbv2types"
	"github.com/berthdev/berth/internal/state"
)

// writeCert puts a self-signed certificate named name in the fixture's
// certificate directory and returns its ARN.
func (f *fixture) writeCert(name string) string {
	f.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "web.example.com"}, DNSNames: []string{"web.example.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		f.t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := os.MkdirAll(f.certDir, 0o700); err != nil {
		f.t.Fatal(err)
	}
	certFile, keyFile := state.CertificateFiles(f.certDir, name)
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		f.t.Fatal(err)
	}
	return arns.Certificate(name)
}

func TestCreateListenerForward(t *testing.T) {
	f := newFixture(t)
	lb := f.createLB("web")
	tg := f.createTG("app")
	l := f.createListener(lb.LoadBalancerArn, 80, forward(tg.TargetGroupArn))
	if !strings.HasPrefix(l.ListenerArn, arnBase+"listener/app/web/") || l.LoadBalancerArn != lb.LoadBalancerArn || *l.Port != 80 || l.Protocol != "HTTP" ||
		l.SslPolicy != "" || len(l.Certificates) != 0 {
		t.Fatalf("listener %+v", l)
	}
	// AWS reports a single target group both ways, with weight 1 and
	// stickiness off.
	a := l.DefaultActions[0]
	if len(l.DefaultActions) != 1 || *a.Order != 1 || a.TargetGroupArn != tg.TargetGroupArn || a.ForwardConfig == nil ||
		!reflect.DeepEqual(a.ForwardConfig.TargetGroups, []elbv2types.TargetGroupTuple{{TargetGroupArn: tg.TargetGroupArn, Weight: new(int32(1))}}) ||
		!reflect.DeepEqual(a.ForwardConfig.TargetGroupStickinessConfig, &elbv2types.TargetGroupStickinessConfig{Enabled: new(false)}) {
		t.Fatalf("default action %+v %+v", a, a.ForwardConfig)
	}
	if got := f.describeTG(tg.TargetGroupArn).LoadBalancerArns; !slices.Equal(got, []string{lb.LoadBalancerArn}) {
		t.Fatalf("LoadBalancerArns %v", got)
	}
	rules := f.rules(l.ListenerArn)
	if len(rules) != 1 || !*rules[0].IsDefault || rules[0].Priority != "default" || len(rules[0].Conditions) != 0 ||
		!strings.HasPrefix(rules[0].RuleArn, arnBase+"listener-rule/app/web/") || rules[0].Actions[0].TargetGroupArn != tg.TargetGroupArn {
		t.Fatalf("default rule %+v", rules)
	}

	// The same listener again is the same listener; another on the port is not.
	again := f.createListener(lb.LoadBalancerArn, 80, forward(tg.TargetGroupArn))
	if again.ListenerArn != l.ListenerArn {
		t.Fatalf("a second listener for the same settings")
	}
	_, err := f.api.CreateListener(f.ctx, &elbv2types.CreateListenerInput{LoadBalancerArn: lb.LoadBalancerArn, Protocol: "HTTP", Port: new(int32(80)), DefaultActions: fixed("404")})
	wantErr(t, err, code(elbv2types.NewDuplicateListenerException), "port 80")

	// Weighted forwarding keeps the weights; stickiness needs a duration.
	b := f.createTG("b")
	l2 := f.createListener(lb.LoadBalancerArn, 81, []elbv2types.Action{{Type: "forward", ForwardConfig: &elbv2types.ForwardActionConfig{
		TargetGroups:                []elbv2types.TargetGroupTuple{{TargetGroupArn: tg.TargetGroupArn, Weight: new(int32(90))}, {TargetGroupArn: b.TargetGroupArn, Weight: new(int32(0))}},
		TargetGroupStickinessConfig: &elbv2types.TargetGroupStickinessConfig{Enabled: new(true), DurationSeconds: new(int32(60))},
	}}})
	fc := l2.DefaultActions[0].ForwardConfig
	if l2.DefaultActions[0].TargetGroupArn != "" || *fc.TargetGroups[0].Weight != 90 || *fc.TargetGroups[1].Weight != 0 || *fc.TargetGroupStickinessConfig.DurationSeconds != 60 {
		t.Fatalf("weighted %+v %+v", l2.DefaultActions[0], fc)
	}
}

func TestCreateListenerErrors(t *testing.T) {
	f := newFixture(t)
	lb := f.createLB("web")
	tg := f.createTG("app")
	var many []elbv2types.TargetGroupTuple
	for i := range 6 {
		many = append(many, elbv2types.TargetGroupTuple{TargetGroupArn: f.createTG(fmt.Sprintf("tg%d", i)).TargetGroupArn})
	}
	redirect := func(c elbv2types.RedirectActionConfig) []elbv2types.Action {
		return []elbv2types.Action{{Type: "redirect", RedirectConfig: &c}}
	}
	tests := []struct {
		name string
		in   elbv2types.CreateListenerInput
		code string
		msg  string
	}{
		{"tcp", elbv2types.CreateListenerInput{Protocol: "TCP", Port: new(int32(80)), DefaultActions: fixed("200")}, validationError, "must be one of 'HTTPS, HTTP'"},
		{"no protocol", elbv2types.CreateListenerInput{Port: new(int32(80)), DefaultActions: fixed("200")}, validationError, "protocol must be specified"},
		{"no port", elbv2types.CreateListenerInput{Protocol: "HTTP", DefaultActions: fixed("200")}, validationError, "port must be specified"},
		{"port 0", elbv2types.CreateListenerInput{Protocol: "HTTP", Port: new(int32(0)), DefaultActions: fixed("200")}, validationError, "from 1 to 65535"},
		{"no actions", elbv2types.CreateListenerInput{Protocol: "HTTP", Port: new(int32(80))}, validationError, "At least one action"},
		{"oidc", elbv2types.CreateListenerInput{Protocol: "HTTP", Port: new(int32(80)), DefaultActions: []elbv2types.Action{{Type: "authenticate-oidc"}}},
			code(elbv2types.NewInvalidLoadBalancerActionException), "does not support authenticate-oidc"},
		{"two actions", elbv2types.CreateListenerInput{Protocol: "HTTP", Port: new(int32(80)), DefaultActions: append(fixed("200"), fixed("404")...)},
			code(elbv2types.NewInvalidLoadBalancerActionException), "exactly one"},
		{"unknown group", elbv2types.CreateListenerInput{Protocol: "HTTP", Port: new(int32(80)), DefaultActions: forward(arnBase + "targetgroup/x/0000000000000000")},
			code(elbv2types.NewTargetGroupNotFoundException), "not found"},
		{"forward nowhere", elbv2types.CreateListenerInput{Protocol: "HTTP", Port: new(int32(80)), DefaultActions: []elbv2types.Action{{Type: "forward"}}}, validationError, "must specify a target group"},
		{"six groups", elbv2types.CreateListenerInput{Protocol: "HTTP", Port: new(int32(80)), DefaultActions: []elbv2types.Action{{Type: "forward", ForwardConfig: &elbv2types.ForwardActionConfig{TargetGroups: many}}}},
			validationError, "at most 5 target groups"},
		{"weight", elbv2types.CreateListenerInput{Protocol: "HTTP", Port: new(int32(80)), DefaultActions: []elbv2types.Action{{Type: "forward", ForwardConfig: &elbv2types.ForwardActionConfig{
			TargetGroups: []elbv2types.TargetGroupTuple{{TargetGroupArn: tg.TargetGroupArn, Weight: new(int32(1000))}}}}}}, validationError, "from 0 to 999"},
		{"group twice", elbv2types.CreateListenerInput{Protocol: "HTTP", Port: new(int32(80)), DefaultActions: []elbv2types.Action{{Type: "forward", ForwardConfig: &elbv2types.ForwardActionConfig{
			TargetGroups: []elbv2types.TargetGroupTuple{{TargetGroupArn: tg.TargetGroupArn}, {TargetGroupArn: tg.TargetGroupArn}}}}}}, validationError, "more than once"},
		{"arn and other config", elbv2types.CreateListenerInput{Protocol: "HTTP", Port: new(int32(80)), DefaultActions: []elbv2types.Action{{Type: "forward", TargetGroupArn: tg.TargetGroupArn,
			ForwardConfig: &elbv2types.ForwardActionConfig{TargetGroups: many[:1]}}}}, validationError, "exactly the one target group"},
		{"stickiness without duration", elbv2types.CreateListenerInput{Protocol: "HTTP", Port: new(int32(80)), DefaultActions: []elbv2types.Action{{Type: "forward", ForwardConfig: &elbv2types.ForwardActionConfig{
			TargetGroups: many[:1], TargetGroupStickinessConfig: &elbv2types.TargetGroupStickinessConfig{Enabled: new(true)}}}}}, validationError, "stickiness duration"},
		{"redirect loop", elbv2types.CreateListenerInput{Protocol: "HTTP", Port: new(int32(80)), DefaultActions: redirect(elbv2types.RedirectActionConfig{StatusCode: "HTTP_301"})},
			code(elbv2types.NewInvalidLoadBalancerActionException), "would loop"},
		{"redirect port", elbv2types.CreateListenerInput{Protocol: "HTTP", Port: new(int32(80)), DefaultActions: redirect(elbv2types.RedirectActionConfig{StatusCode: "HTTP_301", Port: "0"})},
			validationError, "Redirect port"},
		{"redirect path", elbv2types.CreateListenerInput{Protocol: "HTTP", Port: new(int32(80)), DefaultActions: redirect(elbv2types.RedirectActionConfig{StatusCode: "HTTP_301", Path: "x"})},
			validationError, "must begin with '/'"},
		{"redirect without config", elbv2types.CreateListenerInput{Protocol: "HTTP", Port: new(int32(80)), DefaultActions: []elbv2types.Action{{Type: "redirect"}}}, validationError, "RedirectConfig"},
		{"fixed content type", elbv2types.CreateListenerInput{Protocol: "HTTP", Port: new(int32(80)), DefaultActions: []elbv2types.Action{{Type: "fixed-response",
			FixedResponseConfig: &elbv2types.FixedResponseActionConfig{StatusCode: "200", ContentType: "image/png"}}}}, validationError, "content type"},
		{"fixed 302", elbv2types.CreateListenerInput{Protocol: "HTTP", Port: new(int32(80)), DefaultActions: fixed("302")}, validationError, "2XX, 4XX or 5XX"},
		{"fixed body", elbv2types.CreateListenerInput{Protocol: "HTTP", Port: new(int32(80)), DefaultActions: []elbv2types.Action{{Type: "fixed-response",
			FixedResponseConfig: &elbv2types.FixedResponseActionConfig{StatusCode: "200", MessageBody: strings.Repeat("x", 1025)}}}}, validationError, "1024"},
		{"mixed config", elbv2types.CreateListenerInput{Protocol: "HTTP", Port: new(int32(80)), DefaultActions: []elbv2types.Action{{Type: "fixed-response", TargetGroupArn: tg.TargetGroupArn,
			FixedResponseConfig: &elbv2types.FixedResponseActionConfig{StatusCode: "200"}}}}, validationError, "FixedResponseConfig only"},
		{"http certificate", elbv2types.CreateListenerInput{Protocol: "HTTP", Port: new(int32(80)), DefaultActions: fixed("200"), Certificates: []elbv2types.Certificate{{CertificateArn: "x"}}},
			validationError, "only for HTTPS"},
		{"https without certificate", elbv2types.CreateListenerInput{Protocol: "HTTPS", Port: new(int32(443)), DefaultActions: fixed("200")}, validationError, "exactly one certificate"},
		{"unknown certificate", elbv2types.CreateListenerInput{Protocol: "HTTPS", Port: new(int32(443)), DefaultActions: fixed("200"), Certificates: []elbv2types.Certificate{{CertificateArn: arns.Certificate("nope")}}},
			code(elbv2types.NewCertificateNotFoundException), "nope.crt"},
		{"foreign certificate", elbv2types.CreateListenerInput{Protocol: "HTTPS", Port: new(int32(443)), DefaultActions: fixed("200"), Certificates: []elbv2types.Certificate{{CertificateArn: "arn:aws:acm:us-east-1:" + account + ":certificate/../../etc/passwd"}}},
			code(elbv2types.NewCertificateNotFoundException), "Berth's certificate ARNs"},
		{"alpn", elbv2types.CreateListenerInput{Protocol: "HTTP", Port: new(int32(80)), DefaultActions: fixed("200"), AlpnPolicy: []string{"HTTP2Only"}}, validationError, "ALPN"},
		{"mtls", elbv2types.CreateListenerInput{Protocol: "HTTP", Port: new(int32(80)), DefaultActions: fixed("200"), MutualAuthentication: &elbv2types.MutualAuthenticationAttributes{Mode: "verify"}},
			validationError, "mutual TLS"},
		{"unknown load balancer", elbv2types.CreateListenerInput{LoadBalancerArn: arnBase + "loadbalancer/app/x/0000000000000000", Protocol: "HTTP", Port: new(int32(80)), DefaultActions: fixed("200")},
			code(elbv2types.NewLoadBalancerNotFoundException), "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			if in.LoadBalancerArn == "" {
				in.LoadBalancerArn = lb.LoadBalancerArn
			}
			_, err := f.api.CreateListener(f.ctx, &in)
			wantErr(t, err, tt.code, tt.msg)
		})
	}
	out := must[*elbv2types.DescribeListenersOutput](t)(f.api.DescribeListeners(f.ctx, &elbv2types.DescribeListenersInput{LoadBalancerArn: lb.LoadBalancerArn}))
	if len(out.Listeners) != 0 {
		t.Fatalf("refused listeners were stored: %+v", out.Listeners)
	}
}

func TestRedirectDefaults(t *testing.T) {
	f := newFixture(t)
	lb := f.createLB("web")
	l := f.createListener(lb.LoadBalancerArn, 80, []elbv2types.Action{{Type: "redirect", RedirectConfig: &elbv2types.RedirectActionConfig{Protocol: "HTTPS", Port: "443", StatusCode: "HTTP_301"}}})
	want := elbv2types.RedirectActionConfig{Protocol: "HTTPS", Port: "443", Host: "#{host}", Path: "/#{path}", Query: "#{query}", StatusCode: "HTTP_301"}
	if got := *l.DefaultActions[0].RedirectConfig; got != want {
		t.Fatalf("redirect %+v", got)
	}
}

func TestHTTPSListener(t *testing.T) {
	f := newFixture(t)
	lb := f.createLB("web")
	cert := f.writeCert("web")
	if cert != "arn:aws:acm:us-east-1:000000000000:certificate/web" {
		t.Fatalf("certificate ARN %s", cert)
	}
	l := must[*elbv2types.CreateListenerOutput](t)(f.api.CreateListener(f.ctx, &elbv2types.CreateListenerInput{
		LoadBalancerArn: lb.LoadBalancerArn, Protocol: "HTTPS", Port: new(int32(443)), Certificates: []elbv2types.Certificate{{CertificateArn: cert}}, DefaultActions: fixed("200"),
	})).Listeners[0]
	if l.SslPolicy != "ELBSecurityPolicy-2016-08" || len(l.Certificates) != 1 || l.Certificates[0].CertificateArn != cert {
		t.Fatalf("HTTPS listener %+v", l)
	}
	_, err := f.api.CreateListener(f.ctx, &elbv2types.CreateListenerInput{
		LoadBalancerArn: lb.LoadBalancerArn, Protocol: "HTTPS", Port: new(int32(8443)), SslPolicy: "ELBSecurityPolicy-Made-Up",
		Certificates: []elbv2types.Certificate{{CertificateArn: cert}}, DefaultActions: fixed("200"),
	})
	wantErr(t, err, code(elbv2types.NewSSLPolicyNotFoundException), "ELBSecurityPolicy-Made-Up")
	// An HTTPS listener cannot redirect to HTTP.
	_, err = f.api.CreateListener(f.ctx, &elbv2types.CreateListenerInput{
		LoadBalancerArn: lb.LoadBalancerArn, Protocol: "HTTPS", Port: new(int32(8443)), Certificates: []elbv2types.Certificate{{CertificateArn: cert}},
		DefaultActions: []elbv2types.Action{{Type: "redirect", RedirectConfig: &elbv2types.RedirectActionConfig{Protocol: "HTTP", StatusCode: "HTTP_302"}}},
	})
	wantErr(t, err, code(elbv2types.NewInvalidLoadBalancerActionException), "HTTPS to HTTP")

	// HTTPS to HTTP drops the certificate and policy; back needs one.
	mod := must[*elbv2types.ModifyListenerOutput](t)(f.api.ModifyListener(f.ctx, &elbv2types.ModifyListenerInput{ListenerArn: l.ListenerArn, Protocol: "HTTP", Port: new(int32(80))})).Listeners[0]
	if mod.Protocol != "HTTP" || *mod.Port != 80 || mod.SslPolicy != "" || len(mod.Certificates) != 0 {
		t.Fatalf("to HTTP %+v", mod)
	}
	_, err = f.api.ModifyListener(f.ctx, &elbv2types.ModifyListenerInput{ListenerArn: l.ListenerArn, Protocol: "HTTPS"})
	wantErr(t, err, validationError, "exactly one certificate")
	mod = must[*elbv2types.ModifyListenerOutput](t)(f.api.ModifyListener(f.ctx, &elbv2types.ModifyListenerInput{
		ListenerArn: l.ListenerArn, Protocol: "HTTPS", Certificates: []elbv2types.Certificate{{CertificateArn: cert}}, SslPolicy: "ELBSecurityPolicy-TLS13-1-2-2021-06",
	})).Listeners[0]
	if mod.Protocol != "HTTPS" || mod.SslPolicy != "ELBSecurityPolicy-TLS13-1-2-2021-06" {
		t.Fatalf("back to HTTPS %+v", mod)
	}
}

func TestTargetGroupOneLoadBalancer(t *testing.T) {
	f := newFixture(t)
	a, b := f.createLB("a"), f.createLB("b")
	tg := f.createTG("app")
	f.createListener(a.LoadBalancerArn, 80, forward(tg.TargetGroupArn))
	f.createListener(a.LoadBalancerArn, 81, forward(tg.TargetGroupArn)) // the same load balancer may use it twice
	_, err := f.api.CreateListener(f.ctx, &elbv2types.CreateListenerInput{LoadBalancerArn: b.LoadBalancerArn, Protocol: "HTTP", Port: new(int32(80)), DefaultActions: forward(tg.TargetGroupArn)})
	wantErr(t, err, code(elbv2types.NewTargetGroupAssociationLimitException), tg.TargetGroupArn)
}

func TestTooManyListeners(t *testing.T) {
	f := newFixture(t)
	lb := f.createLB("web")
	for i := range 50 {
		f.createListener(lb.LoadBalancerArn, int32(8000+i), fixed("200"))
	}
	_, err := f.api.CreateListener(f.ctx, &elbv2types.CreateListenerInput{LoadBalancerArn: lb.LoadBalancerArn, Protocol: "HTTP", Port: new(int32(9000)), DefaultActions: fixed("200")})
	wantErr(t, err, code(elbv2types.NewTooManyListenersException), "50")
}

func TestDescribeListeners(t *testing.T) {
	f := newFixture(t)
	lb := f.createLB("web")
	var byArn []string
	for _, p := range []int32{8080, 80, 443} {
		byArn = append(byArn, f.createListener(lb.LoadBalancerArn, p, fixed("200")).ListenerArn)
	}
	ports := func(in elbv2types.DescribeListenersInput) (out []int32, next string) {
		t.Helper()
		res := must[*elbv2types.DescribeListenersOutput](t)(f.api.DescribeListeners(f.ctx, &in))
		for _, l := range res.Listeners {
			out = append(out, *l.Port)
		}
		return out, res.NextMarker
	}
	if got, next := ports(elbv2types.DescribeListenersInput{LoadBalancerArn: lb.LoadBalancerArn}); !slices.Equal(got, []int32{80, 443, 8080}) || next != "" {
		t.Fatalf("listeners %v %q", got, next)
	}
	got, next := ports(elbv2types.DescribeListenersInput{LoadBalancerArn: lb.LoadBalancerArn, PageSize: new(int32(2))})
	rest, _ := ports(elbv2types.DescribeListenersInput{LoadBalancerArn: lb.LoadBalancerArn, PageSize: new(int32(2)), Marker: next})
	if !slices.Equal(got, []int32{80, 443}) || !slices.Equal(rest, []int32{8080}) {
		t.Fatalf("pages %v %v", got, rest)
	}
	if got, _ := ports(elbv2types.DescribeListenersInput{ListenerArns: byArn[:1]}); !slices.Equal(got, []int32{8080}) {
		t.Fatalf("by ARN %v", got)
	}
	_, err := f.api.DescribeListeners(f.ctx, &elbv2types.DescribeListenersInput{})
	wantErr(t, err, validationError, "either listener ARNs or a load balancer ARN")
	_, err = f.api.DescribeListeners(f.ctx, &elbv2types.DescribeListenersInput{ListenerArns: []string{byArn[0] + "0"}})
	wantErr(t, err, code(elbv2types.NewListenerNotFoundException), "not found")
}

func TestModifyListenerMovesTargetGroups(t *testing.T) {
	f := newFixture(t)
	lb := f.createLB("web")
	a, b := f.createTG("a"), f.createTG("b")
	f.register(a.TargetGroupArn, elbv2types.TargetDescription{Id: "10.0.0.1"})
	f.register(b.TargetGroupArn, elbv2types.TargetDescription{Id: "10.0.0.2"})
	l := f.createListener(lb.LoadBalancerArn, 80, forward(a.TargetGroupArn))
	other := f.createListener(lb.LoadBalancerArn, 81, fixed("200"))
	if got := healthText(f.health(a.TargetGroupArn)); got != "10.0.0.1:8080 initial Elb.RegistrationInProgress" {
		t.Fatalf("a %s", got)
	}
	_, err := f.api.ModifyListener(f.ctx, &elbv2types.ModifyListenerInput{ListenerArn: l.ListenerArn, Port: new(int32(81))})
	wantErr(t, err, code(elbv2types.NewDuplicateListenerException), "port 81")

	mod := must[*elbv2types.ModifyListenerOutput](t)(f.api.ModifyListener(f.ctx, &elbv2types.ModifyListenerInput{ListenerArn: l.ListenerArn, DefaultActions: forward(b.TargetGroupArn)})).Listeners[0]
	if mod.DefaultActions[0].TargetGroupArn != b.TargetGroupArn || *mod.Port != 80 {
		t.Fatalf("modified %+v", mod)
	}
	if got := f.rules(l.ListenerArn)[0].Actions[0].TargetGroupArn; got != b.TargetGroupArn {
		t.Fatalf("default rule forwards to %s", got)
	}
	if got := healthText(f.health(a.TargetGroupArn)); got != "10.0.0.1:8080 unused Target.NotInUse" {
		t.Fatalf("a %s", got)
	}
	if got := healthText(f.health(b.TargetGroupArn)); got != "10.0.0.2:8080 initial Elb.RegistrationInProgress" {
		t.Fatalf("b %s", got)
	}
	if len(f.describeTG(a.TargetGroupArn).LoadBalancerArns) != 0 || len(f.describeTG(b.TargetGroupArn).LoadBalancerArns) != 1 {
		t.Fatalf("LoadBalancerArns not moved")
	}

	must[*elbv2types.DeleteListenerOutput](t)(f.api.DeleteListener(f.ctx, &elbv2types.DeleteListenerInput{ListenerArn: l.ListenerArn}))
	if got := healthText(f.health(b.TargetGroupArn)); got != "10.0.0.2:8080 unused Target.NotInUse" {
		t.Fatalf("b after delete %s", got)
	}
	_, err = f.api.DescribeRules(f.ctx, &elbv2types.DescribeRulesInput{ListenerArn: l.ListenerArn})
	wantErr(t, err, code(elbv2types.NewListenerNotFoundException), "not found")
	_, err = f.api.DeleteListener(f.ctx, &elbv2types.DeleteListenerInput{ListenerArn: l.ListenerArn})
	wantErr(t, err, code(elbv2types.NewListenerNotFoundException), "not found")
	if got := f.rules(other.ListenerArn); len(got) != 1 {
		t.Fatalf("the other listener's rules %+v", got)
	}
}
