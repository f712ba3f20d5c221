package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sdkelb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/berthdev/berth/internal/api"
	"github.com/berthdev/berth/internal/api/sigv4"
	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/elbv2types"
	"github.com/berthdev/berth/internal/sdkhttp"
)

const (
	testRegion = "us-east-1"
	testKeyID  = "AKIDBERTHQUERY000001"
	testSecret = "berth-query-secret-key-00000000000000000"
)

var created = time.Date(2026, 11, 21, 8, 0, 0, 123_000_000, time.UTC)

// fakeELB is a small ELBv2 handler: enough state to round-trip every kind
// of member through the Query protocol. It records the last input of each
// operation for the test to inspect.
type fakeELB struct {
	elbv2types.Unimplemented
	mu     sync.Mutex
	groups []elbv2types.TargetGroup
	tags   map[string][]elbv2types.Tag
	inputs map[string]any
}

func (f *fakeELB) record(op string, in any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inputs == nil {
		f.inputs = map[string]any{}
	}
	f.inputs[op] = in
}

func (f *fakeELB) input(op string) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inputs[op]
}

func (f *fakeELB) DescribeLoadBalancers(_ context.Context, in *elbv2types.DescribeLoadBalancersInput) (*elbv2types.DescribeLoadBalancersOutput, error) {
	f.record("DescribeLoadBalancers", in)
	if slices.Contains(in.Names, "missing") {
		return nil, elbv2types.NewLoadBalancerNotFoundException("One or more load balancers not found")
	}
	if slices.Contains(in.Names, "crash") {
		return nil, errors.New("the store is on fire")
	}
	return &elbv2types.DescribeLoadBalancersOutput{
		LoadBalancers: []elbv2types.LoadBalancer{{
			LoadBalancerArn:  "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/1",
			DNSName:          "web-1.elb.berth.local",
			CreatedTime:      awsmodel.NewTime(created),
			LoadBalancerName: "web",
			Scheme:           elbv2types.LoadBalancerSchemeEnumInternetFacing,
			State:            &elbv2types.LoadBalancerState{Code: elbv2types.LoadBalancerStateEnumActive, Reason: "ready <&> \"set\""},
			Type:             elbv2types.LoadBalancerTypeEnumApplication,
			AvailabilityZones: []elbv2types.AvailabilityZone{
				{ZoneName: "us-east-1a", SubnetId: "subnet-1", LoadBalancerAddresses: []elbv2types.LoadBalancerAddress{{IpAddress: "10.0.0.1"}}},
				{ZoneName: "us-east-1b", SubnetId: "subnet-2"},
			},
			SecurityGroups: []string{"sg-1", "sg-2"},
			IpAddressType:  elbv2types.IpAddressTypeIpv4,
		}},
		NextMarker: "next",
	}, nil
}

func (f *fakeELB) CreateTargetGroup(_ context.Context, in *elbv2types.CreateTargetGroupInput) (*elbv2types.CreateTargetGroupOutput, error) {
	f.record("CreateTargetGroup", in)
	tg := elbv2types.TargetGroup{
		TargetGroupArn:             "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/" + in.Name + "/1",
		TargetGroupName:            in.Name,
		Protocol:                   in.Protocol,
		Port:                       in.Port,
		VpcId:                      in.VpcId,
		HealthCheckEnabled:         in.HealthCheckEnabled,
		HealthCheckIntervalSeconds: in.HealthCheckIntervalSeconds,
		HealthCheckPath:            in.HealthCheckPath,
		Matcher:                    in.Matcher,
		LoadBalancerArns:           []string{},
		TargetType:                 in.TargetType,
	}
	f.mu.Lock()
	f.groups = append(f.groups, tg)
	f.mu.Unlock()
	return &elbv2types.CreateTargetGroupOutput{TargetGroups: []elbv2types.TargetGroup{tg}}, nil
}

func (f *fakeELB) DescribeTargetGroups(_ context.Context, in *elbv2types.DescribeTargetGroupsInput) (*elbv2types.DescribeTargetGroupsOutput, error) {
	f.record("DescribeTargetGroups", in)
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []elbv2types.TargetGroup
	for _, tg := range f.groups {
		if len(in.Names) == 0 || slices.Contains(in.Names, tg.TargetGroupName) {
			out = append(out, tg)
		}
	}
	return &elbv2types.DescribeTargetGroupsOutput{TargetGroups: out}, nil
}

func (f *fakeELB) AddTags(_ context.Context, in *elbv2types.AddTagsInput) (*elbv2types.AddTagsOutput, error) {
	f.record("AddTags", in)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tags == nil {
		f.tags = map[string][]elbv2types.Tag{}
	}
	for _, arn := range in.ResourceArns {
		f.tags[arn] = append(f.tags[arn], in.Tags...)
	}
	return &elbv2types.AddTagsOutput{}, nil
}

func (f *fakeELB) DescribeTags(_ context.Context, in *elbv2types.DescribeTagsInput) (*elbv2types.DescribeTagsOutput, error) {
	f.record("DescribeTags", in)
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &elbv2types.DescribeTagsOutput{}
	for _, arn := range in.ResourceArns {
		out.TagDescriptions = append(out.TagDescriptions, elbv2types.TagDescription{ResourceArn: arn, Tags: f.tags[arn]})
	}
	return out, nil
}

func (f *fakeELB) ModifyTargetGroupAttributes(_ context.Context, in *elbv2types.ModifyTargetGroupAttributesInput) (*elbv2types.ModifyTargetGroupAttributesOutput, error) {
	f.record("ModifyTargetGroupAttributes", in)
	return &elbv2types.ModifyTargetGroupAttributesOutput{Attributes: in.Attributes}, nil
}

func (f *fakeELB) CreateListener(_ context.Context, in *elbv2types.CreateListenerInput) (*elbv2types.CreateListenerOutput, error) {
	f.record("CreateListener", in)
	return &elbv2types.CreateListenerOutput{Listeners: []elbv2types.Listener{{
		ListenerArn: in.LoadBalancerArn + "/listener/1", LoadBalancerArn: in.LoadBalancerArn,
		Port: in.Port, Protocol: in.Protocol, DefaultActions: in.DefaultActions,
	}}}, nil
}

func (f *fakeELB) DescribeCapacityReservation(_ context.Context, in *elbv2types.DescribeCapacityReservationInput) (*elbv2types.DescribeCapacityReservationOutput, error) {
	return &elbv2types.DescribeCapacityReservationOutput{
		LastModifiedTime:          awsmodel.NewTime(created),
		DecreaseRequestsRemaining: new(int32(3)),
		CapacityReservationState: []elbv2types.ZonalCapacityReservationState{{
			AvailabilityZone: "us-east-1a", EffectiveCapacityUnits: new(2.5),
			State: &elbv2types.CapacityReservationStatus{Code: "provisioned"},
		}},
	}, nil
}

// elbFrontDoor serves h as ELBv2 through the real front door, with SigV4
// verification, exactly as the control plane wires it.
func elbFrontDoor(t *testing.T, h elbv2types.Handler) (*httptest.Server, *api.Metrics) {
	t.Helper()
	metrics := api.NewMetrics(prometheusRegistry())
	front, err := api.New(api.Config{
		Region: testRegion, Account: "000000000000", Metrics: metrics, MaxBodyBytes: 64 << 10,
		Auth: &sigv4.Verifier{Lookup: func(_ context.Context, id string) (sigv4.Credentials, bool) {
			return sigv4.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}, id == testKeyID
		}},
		QueryServices: []*api.QueryService{{
			SigningName:   elbv2types.SigningName,
			Version:       elbv2types.APIVersion,
			Namespace:     elbv2types.XMLNamespace,
			ResultWrapper: elbv2types.ResultWrapper,
			Dispatch: func(ctx context.Context, op string, form url.Values) (any, error) {
				return elbv2types.DispatchQuery(ctx, h, op, form)
			},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(front)
	t.Cleanup(srv.Close)
	return srv, metrics
}

func elbClient(endpoint string) *sdkelb.Client {
	return sdkelb.NewFromConfig(aws.Config{
		Region:           testRegion,
		Credentials:      credentials.NewStaticCredentialsProvider(testKeyID, testSecret, ""),
		BaseEndpoint:     aws.String(endpoint),
		RetryMaxAttempts: 1,
		HTTPClient:       sdkhttp.Client(),
	})
}

// TestQuerySDKRoundTrip drives ELBv2 operations with the AWS Go SDK's
// client through the front door and a fake handler: the SDK's Query
// serializer must decode into the generated inputs, and every member of the
// XML replies (lists, nested structures, maps, timestamps, booleans,
// integers, doubles, escaped text) must decode in the SDK.
func TestQuerySDKRoundTrip(t *testing.T) {
	fake := &fakeELB{}
	srv, _ := elbFrontDoor(t, fake)
	c := elbClient(srv.URL)
	ctx := t.Context()

	lbs, err := c.DescribeLoadBalancers(ctx, &sdkelb.DescribeLoadBalancersInput{Names: []string{"web"}, PageSize: aws.Int32(10)})
	if err != nil {
		t.Fatal(err)
	}
	if in := fake.input("DescribeLoadBalancers").(*elbv2types.DescribeLoadBalancersInput); !slices.Equal(in.Names, []string{"web"}) || in.PageSize == nil || *in.PageSize != 10 {
		t.Fatalf("handler got %+v", in)
	}
	lb := lbs.LoadBalancers[0]
	if aws.ToString(lbs.NextMarker) != "next" || len(lbs.LoadBalancers) != 1 ||
		aws.ToString(lb.LoadBalancerName) != "web" || !lb.CreatedTime.Equal(created) ||
		lb.Scheme != types.LoadBalancerSchemeEnumInternetFacing || lb.Type != types.LoadBalancerTypeEnumApplication ||
		lb.State.Code != types.LoadBalancerStateEnumActive || aws.ToString(lb.State.Reason) != `ready <&> "set"` ||
		len(lb.AvailabilityZones) != 2 || aws.ToString(lb.AvailabilityZones[0].LoadBalancerAddresses[0].IpAddress) != "10.0.0.1" ||
		lb.AvailabilityZones[1].LoadBalancerAddresses != nil || !slices.Equal(lb.SecurityGroups, []string{"sg-1", "sg-2"}) ||
		lb.IpAddressType != types.IpAddressTypeIpv4 || lb.VpcId != nil {
		t.Fatalf("load balancer decoded as %+v", lb)
	}
	// An empty list: sent as Names=, answered as <LoadBalancers/>... here
	// one is still returned, so check the request side only.
	if _, err := c.DescribeLoadBalancers(ctx, &sdkelb.DescribeLoadBalancersInput{Names: []string{}}); err != nil {
		t.Fatal(err)
	}
	if in := fake.input("DescribeLoadBalancers").(*elbv2types.DescribeLoadBalancersInput); in.Names == nil || len(in.Names) != 0 {
		t.Fatalf("an empty list arrived as %#v", in.Names)
	}

	tgs, err := c.CreateTargetGroup(ctx, &sdkelb.CreateTargetGroupInput{
		Name: aws.String("api"), Protocol: types.ProtocolEnumHttp, Port: aws.Int32(8080), VpcId: aws.String("vpc-1"),
		HealthCheckEnabled: aws.Bool(true), HealthCheckIntervalSeconds: aws.Int32(15), HealthCheckPath: aws.String("/health"),
		Matcher: &types.Matcher{HttpCode: aws.String("200-299")}, TargetType: types.TargetTypeEnumIp,
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("a+b c")}, {Key: aws.String("solo")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	in := fake.input("CreateTargetGroup").(*elbv2types.CreateTargetGroupInput)
	if !reflect.DeepEqual(in.Tags, []elbv2types.Tag{{Key: "team", Value: "a+b c"}, {Key: "solo"}}) || in.Matcher.HttpCode != "200-299" ||
		!*in.HealthCheckEnabled || *in.HealthCheckIntervalSeconds != 15 || in.HealthCheckTimeoutSeconds != nil {
		t.Fatalf("handler got %+v", in)
	}
	tg := tgs.TargetGroups[0]
	if aws.ToInt32(tg.Port) != 8080 || !aws.ToBool(tg.HealthCheckEnabled) || aws.ToInt32(tg.HealthCheckIntervalSeconds) != 15 ||
		tg.HealthyThresholdCount != nil || aws.ToString(tg.Matcher.HttpCode) != "200-299" ||
		tg.LoadBalancerArns == nil || len(tg.LoadBalancerArns) != 0 || tg.TargetType != types.TargetTypeEnumIp || tg.Protocol != types.ProtocolEnumHttp {
		t.Fatalf("target group decoded as %+v", tg)
	}
	tgArn := aws.ToString(tg.TargetGroupArn)

	// An operation without output members answers an empty result element.
	if _, err := c.AddTags(ctx, &sdkelb.AddTagsInput{ResourceArns: []string{tgArn}, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}); err != nil {
		t.Fatal(err)
	}
	tags, err := c.DescribeTags(ctx, &sdkelb.DescribeTagsInput{ResourceArns: []string{tgArn, "arn:none"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(tags.TagDescriptions) != 2 || aws.ToString(tags.TagDescriptions[0].Tags[0].Value) != "v" ||
		aws.ToString(tags.TagDescriptions[1].ResourceArn) != "arn:none" || tags.TagDescriptions[1].Tags != nil {
		t.Fatalf("tags decoded as %+v", tags.TagDescriptions)
	}

	attrs, err := c.ModifyTargetGroupAttributes(ctx, &sdkelb.ModifyTargetGroupAttributesInput{
		TargetGroupArn: aws.String(tgArn),
		Attributes: []types.TargetGroupAttribute{
			{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("30")},
			{Key: aws.String("stickiness.enabled"), Value: aws.String("true")},
		},
	})
	if err != nil || len(attrs.Attributes) != 2 || aws.ToString(attrs.Attributes[1].Value) != "true" {
		t.Fatalf("ModifyTargetGroupAttributes = %+v, %v", attrs, err)
	}

	// Maps, longs and booleans inside a list of nested structures, both ways.
	ls, err := c.CreateListener(ctx, &sdkelb.CreateListenerInput{
		LoadBalancerArn: lb.LoadBalancerArn, Port: aws.Int32(443), Protocol: types.ProtocolEnumHttps,
		DefaultActions: []types.Action{
			{Type: types.ActionTypeEnumAuthenticateOidc, Order: aws.Int32(1), AuthenticateOidcConfig: &types.AuthenticateOidcActionConfig{
				Issuer: aws.String("https://idp"), ClientId: aws.String("c"), SessionTimeout: aws.Int64(604800),
				AuthorizationEndpoint: aws.String("https://idp/auth"), TokenEndpoint: aws.String("https://idp/token"),
				UserInfoEndpoint:                 aws.String("https://idp/user"),
				UseExistingClientSecret:          aws.Bool(true),
				AuthenticationRequestExtraParams: map[string]string{"prompt": "login", "display": "page"},
			}},
			{Type: types.ActionTypeEnumForward, Order: aws.Int32(2), ForwardConfig: &types.ForwardActionConfig{
				TargetGroups:                []types.TargetGroupTuple{{TargetGroupArn: aws.String(tgArn), Weight: aws.Int32(7)}},
				TargetGroupStickinessConfig: &types.TargetGroupStickinessConfig{Enabled: aws.Bool(false), DurationSeconds: aws.Int32(60)},
			}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	acts := ls.Listeners[0].DefaultActions
	oidc, fwd := acts[0].AuthenticateOidcConfig, acts[1].ForwardConfig
	if len(acts) != 2 || !reflect.DeepEqual(oidc.AuthenticationRequestExtraParams, map[string]string{"prompt": "login", "display": "page"}) ||
		aws.ToInt64(oidc.SessionTimeout) != 604800 || !aws.ToBool(oidc.UseExistingClientSecret) || aws.ToInt32(acts[1].Order) != 2 ||
		aws.ToInt32(fwd.TargetGroups[0].Weight) != 7 || aws.ToBool(fwd.TargetGroupStickinessConfig.Enabled) ||
		aws.ToInt32(fwd.TargetGroupStickinessConfig.DurationSeconds) != 60 || aws.ToInt32(ls.Listeners[0].Port) != 443 {
		t.Fatalf("listener decoded as %+v / %+v / %+v", acts, oidc, fwd)
	}

	// Doubles and a top-level timestamp.
	cap, err := c.DescribeCapacityReservation(ctx, &sdkelb.DescribeCapacityReservationInput{LoadBalancerArn: lb.LoadBalancerArn})
	if err != nil {
		t.Fatal(err)
	}
	if !cap.LastModifiedTime.Equal(created) || aws.ToInt32(cap.DecreaseRequestsRemaining) != 3 ||
		aws.ToFloat64(cap.CapacityReservationState[0].EffectiveCapacityUnits) != 2.5 ||
		cap.CapacityReservationState[0].State.Code != types.CapacityReservationStateEnumProvisioned {
		t.Fatalf("capacity reservation decoded as %+v", cap)
	}
}

// TestQuerySDKErrors checks the error codes the SDK maps to its typed
// errors: the model's error code (LoadBalancerNotFound, not the shape
// name), validation, unimplemented operations, server errors, and signing.
func TestQuerySDKErrors(t *testing.T) {
	srv, _ := elbFrontDoor(t, &fakeELB{})
	c := elbClient(srv.URL)
	ctx := t.Context()

	_, err := c.DescribeLoadBalancers(ctx, &sdkelb.DescribeLoadBalancersInput{Names: []string{"missing"}})
	var notFound *types.LoadBalancerNotFoundException
	if !errors.As(err, &notFound) || notFound.ErrorMessage() != "One or more load balancers not found" || notFound.ErrorFault() != smithy.FaultClient {
		t.Fatalf("missing load balancer: %v", err)
	}
	cases := []struct {
		name   string
		call   func() error
		code   string
		status int
		msg    string
	}{
		{"validation", func() error {
			_, err := c.DescribeLoadBalancers(ctx, &sdkelb.DescribeLoadBalancersInput{PageSize: aws.Int32(0)})
			return err
		}, "ValidationError", 400, "at 'PageSize' failed to satisfy constraint"},
		{"unimplemented", func() error {
			_, err := c.DeleteTrustStore(ctx, &sdkelb.DeleteTrustStoreInput{TrustStoreArn: aws.String("arn:ts")})
			return err
		}, "InvalidAction", 400, "DeleteTrustStore is not implemented"},
		{"server error", func() error {
			_, err := c.DescribeLoadBalancers(ctx, &sdkelb.DescribeLoadBalancersInput{Names: []string{"crash"}})
			return err
		}, "InternalFailure", 500, "Quote request id"},
		{"wrong secret", func() error {
			bad := sdkelb.NewFromConfig(aws.Config{Region: testRegion, BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 1,
				Credentials: credentials.NewStaticCredentialsProvider(testKeyID, "wrong", ""), HTTPClient: sdkhttp.Client()})
			_, err := bad.DescribeLoadBalancers(ctx, &sdkelb.DescribeLoadBalancersInput{})
			return err
		}, "SignatureDoesNotMatch", 403, "signature we calculated does not match"},
		{"unknown key", func() error {
			bad := sdkelb.NewFromConfig(aws.Config{Region: testRegion, BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 1,
				Credentials: credentials.NewStaticCredentialsProvider("AKIDUNKNOWN000000000", testSecret, ""), HTTPClient: sdkhttp.Client()})
			_, err := bad.DescribeLoadBalancers(ctx, &sdkelb.DescribeLoadBalancersInput{})
			return err
		}, "InvalidClientTokenId", 403, "security token"},
		{"other region", func() error {
			bad := sdkelb.NewFromConfig(aws.Config{Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 1,
				Credentials: credentials.NewStaticCredentialsProvider(testKeyID, testSecret, ""), HTTPClient: sdkhttp.Client()})
			_, err := bad.DescribeLoadBalancers(ctx, &sdkelb.DescribeLoadBalancersInput{})
			return err
		}, "SignatureDoesNotMatch", 403, "region"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var ae smithy.APIError
			var re interface{ HTTPStatusCode() int }
			if !errors.As(err, &ae) || ae.ErrorCode() != tc.code || !strings.Contains(ae.ErrorMessage(), tc.msg) {
				t.Fatalf("got %v, want %s containing %q", err, tc.code, tc.msg)
			}
			if !errors.As(err, &re) || re.HTTPStatusCode() != tc.status {
				t.Fatalf("status: %v", err)
			}
		})
	}
}

// TestQueryRawRequests covers what the SDKs never send: an unknown action,
// a wrong or missing Version, a GET, and a form of the wrong types. Each
// reply must be the Query XML error shape in ELBv2's namespace.
func TestQueryRawRequests(t *testing.T) {
	srv, _ := elbFrontDoor(t, &fakeELB{})
	cases := []struct {
		name, method, form string
		status             int
		code, msg          string
	}{
		{"unknown action", "POST", "Action=DescribeThings&Version=2015-12-01", 400, "InvalidAction", "Could not find operation DescribeThings for version 2015-12-01"},
		{"classic ELB version", "POST", "Action=DescribeLoadBalancers&Version=2012-06-01", 400, "InvalidAction", "for version 2012-06-01: Berth serves version 2015-12-01"},
		{"no version", "POST", "Action=DescribeLoadBalancers", 400, "InvalidAction", "NO_VERSION_SPECIFIED"},
		{"bad integer", "POST", "Action=DescribeLoadBalancers&Version=2015-12-01&PageSize=ten", 400, "ValidationError", `Value "ten" at 'PageSize'`},
		{"server error", "POST", "Action=DescribeLoadBalancers&Version=2015-12-01&Names.member.1=crash", 500, "InternalFailure", "An internal error occurred"},
		{"body too large", "POST", "Action=AddTags&Version=2015-12-01&Tags.member.1.Value=" + strings.Repeat("v", 70<<10), 413, "RequestEntityTooLargeException", "exceeds"},
		{"missing required", "POST", "Action=AddTags&Version=2015-12-01&Tags.member.1.Value=v", 400, "ValidationError", "Value null at 'ResourceArns'"},
		{"GET", "GET", "Action=DescribeLoadBalancers&Version=2015-12-01&Names.member.1=web", 200, "", "<LoadBalancerName>web</LoadBalancerName>"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := signedQuery(t, srv.URL, tc.method, tc.form, "elasticloadbalancing")
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "text/xml" {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if tc.code == "" {
				if !strings.Contains(body, tc.msg) {
					t.Fatalf("reply lacks %s: %s", tc.msg, body)
				}
				return
			}
			var e struct {
				XMLName xml.Name `xml:"ErrorResponse"`
				Type    string   `xml:"Error>Type"`
				Code    string   `xml:"Error>Code"`
				Message string   `xml:"Error>Message"`
				ReqID   string   `xml:"RequestId"`
			}
			fault, ns := "Sender", elbv2types.XMLNamespace
			if tc.status >= 500 {
				fault = "Receiver"
			}
			if tc.status == http.StatusRequestEntityTooLarge {
				ns = "" // refused before it is routed
			}
			if err := xmlUnmarshal(body, &e); err != nil || e.Code != tc.code || e.Type != fault || !strings.Contains(e.Message, tc.msg) ||
				e.XMLName.Space != ns || e.ReqID != resp.Header.Get("x-amzn-RequestId") {
				t.Fatalf("error %+v (%v): %s", e, err, body)
			}
		})
	}
	// An unsigned request reaches ELBv2 by its Version and is refused there.
	resp, err := http.Post(srv.URL, "application/x-www-form-urlencoded", strings.NewReader("Action=DescribeLoadBalancers&Version=2015-12-01"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(body), "<Code>MissingAuthenticationToken</Code>") || !strings.Contains(string(body), elbv2types.XMLNamespace) {
		t.Fatalf("unsigned: %d %s", resp.StatusCode, body)
	}
	// A Query request for a service not configured keeps the old answer.
	resp, b := signedQuery(t, srv.URL, "POST", "Action=ListMetrics&Version=2010-08-01", "monitoring")
	if resp.StatusCode != 400 || !strings.Contains(b, "<Code>InvalidAction</Code>") || !strings.Contains(b, "CloudWatch, which Berth does not implement yet") {
		t.Fatalf("CloudWatch over Query: %d %s", resp.StatusCode, b)
	}

	// Query requests are counted like JSON ones; unknown actions and
	// versions under "unknown".
	resp, err = http.Get(srv.URL + api.MetricsPath)
	if err != nil {
		t.Fatal(err)
	}
	scraped, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range []string{
		`berth_api_requests_total{code="OK",operation="DescribeLoadBalancers",service="elasticloadbalancing"} 1`,
		`berth_api_requests_total{code="InvalidAction",operation="unknown",service="elasticloadbalancing"} 3`,
		`berth_api_requests_total{code="ValidationError",operation="DescribeLoadBalancers",service="elasticloadbalancing"} 1`,
		`berth_api_requests_total{code="ValidationError",operation="AddTags",service="elasticloadbalancing"} 1`,
		`berth_api_requests_total{code="MissingAuthenticationToken",operation="DescribeLoadBalancers",service="elasticloadbalancing"} 1`,
	} {
		if !strings.Contains(string(scraped), line+"\n") {
			t.Errorf("metrics lack %s", line)
		}
	}
}

// signedQuery sends a SigV4-signed Query request (form body for POST,
// query string for GET) and returns the reply and its body.
func signedQuery(t *testing.T, endpoint, method, form, service string) (*http.Response, string) {
	t.Helper()
	var req *http.Request
	payload := ""
	if method == http.MethodGet {
		req, _ = http.NewRequest(method, endpoint+"/?"+form, nil)
	} else {
		payload = form
		req, _ = http.NewRequest(method, endpoint+"/", strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	}
	sum := sha256Hex(payload)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret},
		req, sum, service, testRegion, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestQueryAWSCLI runs the real AWS CLI (botocore's Query serializer and
// XML parser) against the fake handler: create a target group, then
// describe it.
func TestQueryAWSCLI(t *testing.T) {
	bin := awsCLI(t)
	srv, _ := elbFrontDoor(t, &fakeELB{})
	home := t.TempDir()
	run := func(args ...string) map[string]any {
		t.Helper()
		cmd := exec.Command(bin, append(args, "--endpoint-url", srv.URL, "--output", "json", "--no-cli-pager")...)
		cmd.Env = []string{
			"HOME=" + home, "PATH=" + os.Getenv("PATH"),
			"AWS_ACCESS_KEY_ID=" + testKeyID, "AWS_SECRET_ACCESS_KEY=" + testSecret,
			"AWS_DEFAULT_REGION=" + testRegion, "AWS_MAX_ATTEMPTS=1",
			"AWS_CONFIG_FILE=" + filepath.Join(home, "config"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials"),
		}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		var out map[string]any
		if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
			t.Fatalf("aws %s printed %q", strings.Join(args, " "), stdout.String())
		}
		return out
	}
	run("elbv2", "create-target-group", "--name", "cli", "--protocol", "HTTP", "--port", "80", "--vpc-id", "vpc-1",
		"--health-check-path", "/up", "--matcher", "HttpCode=200", "--tags", "Key=team,Value=x y", "Key=env,Value=dev")
	out := run("elbv2", "describe-target-groups", "--names", "cli")
	tgs, _ := out["TargetGroups"].([]any)
	if len(tgs) != 1 {
		t.Fatalf("describe-target-groups printed %v", out)
	}
	tg := tgs[0].(map[string]any)
	want := map[string]any{
		"TargetGroupName": "cli", "Protocol": "HTTP", "Port": 80.0, "VpcId": "vpc-1", "HealthCheckPath": "/up",
		"Matcher": map[string]any{"HttpCode": "200"}, "LoadBalancerArns": []any{},
	}
	for k, v := range want {
		if !reflect.DeepEqual(tg[k], v) {
			t.Errorf("%s = %#v, want %#v", k, tg[k], v)
		}
	}
	// The fake echoes what it was sent: a member not sent is not answered.
	if v, ok := tg["HealthCheckEnabled"]; ok {
		t.Errorf("HealthCheckEnabled = %#v, want it left out", v)
	}
	// botocore checks the error code of its modeled exceptions too.
	cmd := exec.Command(bin, "elbv2", "describe-load-balancers", "--names", "missing", "--endpoint-url", srv.URL, "--no-cli-pager")
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "AWS_ACCESS_KEY_ID=" + testKeyID, "AWS_SECRET_ACCESS_KEY=" + testSecret,
		"AWS_DEFAULT_REGION=" + testRegion, "AWS_MAX_ATTEMPTS=1", "AWS_CONFIG_FILE=" + filepath.Join(home, "config")}
	msg, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "(LoadBalancerNotFound)") {
		t.Fatalf("describe-load-balancers --names missing: %v %s", err, msg)
	}
}

// awsCLI finds the AWS CLI v2 as the end-to-end tests do: skipped when
// absent, except in CI, where its absence is a failure.
func awsCLI(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("BERTH_TEST_AWS_CLI"), "/usr/bin/aws"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if p, err := exec.LookPath("aws"); err == nil {
		if out, err := exec.Command(p, "--version").CombinedOutput(); err == nil && strings.HasPrefix(string(out), "aws-cli/2") {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("the AWS CLI is not installed (apt-get install awscli); CI must have it")
	}
	t.Skip("the AWS CLI is not installed: apt-get install awscli, or set BERTH_TEST_AWS_CLI")
	return ""
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func xmlUnmarshal(s string, v any) error { return xml.Unmarshal([]byte(s), v) }

func prometheusRegistry() *prometheus.Registry { return prometheus.NewRegistry() }
