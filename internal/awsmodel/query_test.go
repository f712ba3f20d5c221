package awsmodel_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/elbv2types"
)

// form parses a Query request body the way the front door does.
func form(t testing.TB, raw string) url.Values {
	t.Helper()
	v, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestDecodeQuery(t *testing.T) {
	// What the Go SDK sends for CreateTargetGroup (nested structure, list of
	// structures, integers, booleans, enums), plus keys that are ignored.
	// Numbers and booleans are pointers: one sent as 0 or false is set, one
	// not sent stays nil.
	var tg elbv2types.CreateTargetGroupInput
	err := awsmodel.DecodeQuery(form(t, "Action=CreateTargetGroup&Version=2015-12-01&Name=web&Protocol=HTTP&Port=8080"+
		"&HealthCheckEnabled=false&HealthCheckIntervalSeconds=15&Matcher.HttpCode=200-299"+
		"&Tags.member.1.Key=team&Tags.member.1.Value=a%26b&Tags.member.2.Key=env"+
		"&Unknown.Member=1&X-Amz-Signature=abc&Port.extra=9"), &tg)
	if err != nil {
		t.Fatal(err)
	}
	want := elbv2types.CreateTargetGroupInput{
		Name: "web", Protocol: "HTTP", Port: new(int32(8080)), HealthCheckEnabled: new(false), HealthCheckIntervalSeconds: new(int32(15)),
		Matcher: &elbv2types.Matcher{HttpCode: "200-299"},
		Tags:    []elbv2types.Tag{{Key: "team", Value: "a&b"}, {Key: "env"}},
	}
	if !reflect.DeepEqual(tg, want) {
		t.Fatalf("CreateTargetGroup decoded as\n%+v\nwant\n%+v", tg, want)
	}

	// A modification sends only what changes: the rest stays nil, and a
	// number sent as 0 is there to be refused, not taken as absent.
	var mod elbv2types.ModifyTargetGroupInput
	if err := awsmodel.DecodeQuery(form(t, "TargetGroupArn=arn&HealthCheckIntervalSeconds=0&HealthCheckEnabled=true"), &mod); err != nil {
		t.Fatal(err)
	}
	wantMod := elbv2types.ModifyTargetGroupInput{TargetGroupArn: "arn", HealthCheckIntervalSeconds: new(int32(0)), HealthCheckEnabled: new(true)}
	if !reflect.DeepEqual(mod, wantMod) {
		t.Fatalf("ModifyTargetGroup decoded as\n%+v\nwant\n%+v", mod, wantMod)
	}

	// Lists of strings arrive in index order, whatever the form's order; an
	// empty list is Names= and is not nil.
	var lb elbv2types.DescribeLoadBalancersInput
	if err := awsmodel.DecodeQuery(form(t, "Names.member.2=b&Names.member.10=c&Names.member.1=a&PageSize=5"), &lb); err != nil {
		t.Fatal(err)
	}
	if strings.Join(lb.Names, ",") != "a,b,c" || lb.PageSize == nil || *lb.PageSize != 5 {
		t.Fatalf("DescribeLoadBalancers decoded as %+v", lb)
	}
	lb = elbv2types.DescribeLoadBalancersInput{}
	if err := awsmodel.DecodeQuery(form(t, "Names="), &lb); err != nil || lb.Names == nil || len(lb.Names) != 0 {
		t.Fatalf("Names= decoded as %#v, %v", lb.Names, err)
	}

	// Maps: Name.entry.N.key / .value, inside a list of structures; a long.
	var l elbv2types.CreateListenerInput
	err = awsmodel.DecodeQuery(form(t, "LoadBalancerArn=arn&DefaultActions.member.1.Type=authenticate-oidc&DefaultActions.member.1.Order=1"+
		"&DefaultActions.member.1.AuthenticateOidcConfig.SessionTimeout=604800000000"+
		"&DefaultActions.member.1.AuthenticateOidcConfig.AuthenticationRequestExtraParams.entry.1.key=prompt"+
		"&DefaultActions.member.1.AuthenticateOidcConfig.AuthenticationRequestExtraParams.entry.1.value=login"+
		"&DefaultActions.member.1.AuthenticateOidcConfig.AuthenticationRequestExtraParams.entry.2.key=empty"+
		"&DefaultActions.member.1.AuthenticateOidcConfig.UseExistingClientSecret=true"), &l)
	if err != nil {
		t.Fatal(err)
	}
	oidc := l.DefaultActions[0].AuthenticateOidcConfig
	if *l.DefaultActions[0].Order != 1 || *oidc.SessionTimeout != 604800000000 || !*oidc.UseExistingClientSecret ||
		!reflect.DeepEqual(oidc.AuthenticationRequestExtraParams, map[string]string{"prompt": "login", "empty": ""}) {
		t.Fatalf("CreateListener decoded as %+v / %+v", l.DefaultActions, oidc)
	}

	// Timestamps (ISO 8601), blobs and doubles, which elbv2 inputs do not
	// have but other Query APIs do; a pointer given 0 is set, one given
	// only sub-keys is not.
	var other struct {
		At    *awsmodel.Time `json:"At,omitempty"`
		Data  []byte         `json:"Data,omitzero"`
		Ratio *float64       `json:"Ratio,omitempty"`
		Count *int32         `json:"Count,omitempty"`
		Skip  *int32         `json:"Skip,omitempty"`
	}
	if err := awsmodel.DecodeQuery(form(t, "At=2026-11-21T08:00:00.5Z&Data=aGk%3D&Ratio=0.25&Count=0&Skip.x=1"), &other); err != nil {
		t.Fatal(err)
	}
	if !other.At.Equal(time.Date(2026, 11, 21, 8, 0, 0, 5e8, time.UTC)) || string(other.Data) != "hi" || *other.Ratio != 0.25 ||
		other.Count == nil || *other.Count != 0 || other.Skip != nil {
		t.Fatalf("decoded %+v", other)
	}
}

func TestDecodeQueryErrorsNameTheMember(t *testing.T) {
	cases := []struct{ raw, field string }{
		{"PageSize=ten", "PageSize"},
		{"PageSize=99999999999", "PageSize"},
		{"Names=a", "Names"},
		{"Names.member.0=a", "Names.member.0"},
		{"Names.member.x=a", "Names.member.x"},
	}
	for _, tc := range cases {
		var in elbv2types.DescribeLoadBalancersInput
		err := awsmodel.DecodeQuery(form(t, tc.raw), &in)
		var ve *awsmodel.ValidationError
		if !errors.As(err, &ve) || ve.Violations[0].Field != tc.field {
			t.Errorf("%s: got %v, want a validation error at %s", tc.raw, err, tc.field)
		}
	}
	for raw, field := range map[string]string{
		"HealthCheckEnabled=yes": "HealthCheckEnabled",
		"Tags.member.1.Key=k&Tags.member.2.Key=a&Tags.member.2.Value.x=1&Port=80.5": "Port",
	} {
		var in elbv2types.CreateTargetGroupInput
		err := awsmodel.DecodeQuery(form(t, raw), &in)
		var ve *awsmodel.ValidationError
		if !errors.As(err, &ve) || ve.Violations[0].Field != field {
			t.Errorf("%s: got %v, want a validation error at %s", raw, err, field)
		}
	}
	var l elbv2types.CreateListenerInput
	err := awsmodel.DecodeQuery(form(t, "DefaultActions.member.1.AuthenticateOidcConfig.AuthenticationRequestExtraParams.entry.1.value=v"), &l)
	if err == nil || !strings.Contains(err.Error(), "AuthenticationRequestExtraParams.entry.1.key") {
		t.Errorf("a map entry without a key: %v", err)
	}
	if err := awsmodel.DecodeQuery(form(t, ""), elbv2types.CreateListenerInput{}); err == nil {
		t.Error("decoding into a non-pointer must fail")
	}
}

// TestCallQueryValidatesOnlyWhatIsSent: an absent PageSize (nil in the
// generated struct) is not checked against its minimum; a sent one is, 0
// included, and a missing required member is always refused.
func TestCallQueryValidatesOnlyWhatIsSent(t *testing.T) {
	var got *elbv2types.DescribeLoadBalancersInput
	h := fakeDescribe{got: &got}
	if _, err := elbv2types.DispatchQuery(t.Context(), h, "DescribeLoadBalancers", form(t, "Names.member.1=a")); err != nil || got.Names[0] != "a" {
		t.Fatalf("valid request: %v", err)
	}
	_, err := elbv2types.DispatchQuery(t.Context(), h, "DescribeLoadBalancers", form(t, "PageSize=0"))
	if err == nil || !strings.Contains(err.Error(), "at 'PageSize' failed to satisfy constraint: Member must have value greater than or equal to 1") {
		t.Fatalf("PageSize=0: %v", err)
	}
	_, err = elbv2types.DispatchQuery(t.Context(), h, "AddTags", form(t, "Tags.member.1.Value=v"))
	if err == nil || !strings.Contains(err.Error(), "Value null at 'ResourceArns'") || !strings.Contains(err.Error(), "Value null at 'Tags[0].Key'") {
		t.Fatalf("AddTags without ResourceArns or a Key: %v", err)
	}
	var nie *awsmodel.NotImplementedError
	if _, err := elbv2types.DispatchQuery(t.Context(), h, "DeleteTrustStore", form(t, "TrustStoreArn=x")); !errors.As(err, &nie) {
		t.Fatalf("unimplemented operation: %v", err)
	}
	var unk *awsmodel.UnknownOperationError
	if _, err := elbv2types.DispatchQuery(t.Context(), h, "DescribeThings", nil); !errors.As(err, &unk) {
		t.Fatalf("unknown operation: %v", err)
	}
}

type fakeDescribe struct {
	elbv2types.Unimplemented
	got **elbv2types.DescribeLoadBalancersInput
}

func (f fakeDescribe) DescribeLoadBalancers(_ context.Context, in *elbv2types.DescribeLoadBalancersInput) (*elbv2types.DescribeLoadBalancersOutput, error) {
	*f.got = in
	return nil, nil
}

func TestEncodeQueryXML(t *testing.T) {
	out := &elbv2types.DescribeLoadBalancersOutput{
		LoadBalancers: []elbv2types.LoadBalancer{{
			LoadBalancerArn: "arn:lb", CreatedTime: awsmodel.NewTime(time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)),
			LoadBalancerName: "a<b>&c", State: &elbv2types.LoadBalancerState{Code: "active"},
			AvailabilityZones: []elbv2types.AvailabilityZone{{ZoneName: "z", LoadBalancerAddresses: []elbv2types.LoadBalancerAddress{}}},
			SecurityGroups:    []string{"sg-1", "sg-2"},
		}},
	}
	var b bytes.Buffer
	if err := awsmodel.EncodeQueryXML(&b, "DescribeLoadBalancers", "DescribeLoadBalancersResult", elbv2types.XMLNamespace, "req-1", out); err != nil {
		t.Fatal(err)
	}
	want := `<DescribeLoadBalancersResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">` +
		`<DescribeLoadBalancersResult><LoadBalancers><member>` +
		`<LoadBalancerArn>arn:lb</LoadBalancerArn><CreatedTime>2026-11-21T08:00:00.000Z</CreatedTime>` +
		`<LoadBalancerName>a&lt;b&gt;&amp;c</LoadBalancerName><State><Code>active</Code></State>` +
		`<AvailabilityZones><member><ZoneName>z</ZoneName><LoadBalancerAddresses/></member></AvailabilityZones>` +
		`<SecurityGroups><member>sg-1</member><member>sg-2</member></SecurityGroups>` +
		`</member></LoadBalancers></DescribeLoadBalancersResult>` +
		`<ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></DescribeLoadBalancersResponse>`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}

	// An output without members still has its (empty) result element; an
	// operation without output has none.
	for _, tc := range []struct {
		wrapper string
		out     any
		want    string
	}{
		{"AddTagsResult", &elbv2types.AddTagsOutput{}, `<AddTagsResponse xmlns="ns"><AddTagsResult/><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AddTagsResponse>`},
		{"AddTagsResult", nil, `<AddTagsResponse xmlns="ns"><AddTagsResult/><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AddTagsResponse>`},
		{"", &awsmodel.Empty{}, `<AddTagsResponse xmlns="ns"><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AddTagsResponse>`},
	} {
		b.Reset()
		if err := awsmodel.EncodeQueryXML(&b, "AddTags", tc.wrapper, "ns", "r", tc.out); err != nil || b.String() != tc.want {
			t.Errorf("%q %T: got %s (%v)", tc.wrapper, tc.out, b.String(), err)
		}
	}

	// Maps in key order, scalars by type, a zero unboxed scalar still sent,
	// a pointer to 0 or false sent and a nil one left out, characters XML
	// cannot carry replaced.
	b.Reset()
	var scalars struct {
		Params  map[string]string `json:"Params,omitzero"`
		N       int64             `json:"N"`
		On      bool              `json:"On"`
		Zero    int32             `json:"Zero"`
		Weight  *int32            `json:"Weight,omitempty"`
		Off     *bool             `json:"Off,omitempty"`
		Absent  *int32            `json:"Absent,omitempty"`
		Skipped string            `json:"Skipped,omitempty"`
		Ratio   float64           `json:"Ratio"`
		Inf     float64           `json:"Inf"`
		Data    []byte            `json:"Data,omitzero"`
		Ctl     string            `json:"Ctl"`
	}
	scalars.Params = map[string]string{"b": "2", "a": "1"}
	scalars.N, scalars.On, scalars.Ratio, scalars.Inf, scalars.Data, scalars.Ctl = -7, true, 0.5, math.Inf(1), []byte("hi"), "x\x00y"
	scalars.Weight, scalars.Off = new(int32(0)), new(false)
	if err := awsmodel.EncodeQueryXML(&b, "Op", "OpResult", "ns", "r", &scalars); err != nil {
		t.Fatal(err)
	}
	want = `<OpResult><Params><entry><key>a</key><value>1</value></entry><entry><key>b</key><value>2</value></entry></Params>` +
		`<N>-7</N><On>true</On><Zero>0</Zero><Weight>0</Weight><Off>false</Off>` +
		`<Ratio>0.5</Ratio><Inf>Infinity</Inf><Data>aGk=</Data><Ctl>x` + "\uFFFD" + `y</Ctl></OpResult>`
	if !strings.Contains(b.String(), want) {
		t.Fatalf("got %s\nwant it to contain %s", b.String(), want)
	}
	if err := awsmodel.EncodeQueryXML(&b, "Op", "OpResult", "ns", "r", 5); err == nil {
		t.Fatal("encoding a non-struct output must fail")
	}
}

// FuzzDecodeQuery feeds arbitrary forms to every ELBv2 operation's Query
// decoder and validator. Nothing may panic, every rejection must be one the
// front door maps to an AWS error, and whatever decodes must encode as XML.
func FuzzDecodeQuery(f *testing.F) {
	f.Add(uint8(0), "Action=CreateTargetGroup&Version=2015-12-01&Name=a&Matcher.HttpCode=200&Tags.member.1.Key=k")
	f.Add(uint8(1), "Names.member.1=a&Names.member.3=b&PageSize=5")
	f.Add(uint8(2), "DefaultActions.member.1.AuthenticateOidcConfig.AuthenticationRequestExtraParams.entry.1.key=k&DefaultActions.member.1.Order=x")
	f.Add(uint8(3), "Names=&Names.member.0=&Attributes.member.99999999999999999999.Key=k")
	f.Add(uint8(4), "a..b=&.=1&%zz")
	f.Fuzz(func(t *testing.T, op uint8, raw string) {
		values, _ := url.ParseQuery(raw) // keeps what parsed, as AWS does not
		name := elbv2types.Operations[int(op)%len(elbv2types.Operations)]
		_, err := elbv2types.DispatchQuery(t.Context(), echoInputs{}, name, values)
		var (
			ve  *awsmodel.ValidationError
			nie *awsmodel.NotImplementedError
		)
		if err == nil || !(errors.As(err, &ve) || errors.As(err, &nie)) {
			t.Fatalf("%s(%q): unexpected result %v", name, raw, err)
		}
		if ve != nil && ve.Error() == "" {
			t.Fatal("empty validation message")
		}
		var lb elbv2types.CreateListenerInput
		if awsmodel.DecodeQuery(values, &lb) == nil {
			if err := awsmodel.EncodeQueryXML(&bytes.Buffer{}, "CreateListener", "CreateListenerResult", "ns", "r", &lb); err != nil {
				t.Fatalf("a decoded input does not encode: %v", err)
			}
		}
	})
}

// echoInputs answers every operation as not implemented, after decoding.
type echoInputs struct{ elbv2types.Unimplemented }
