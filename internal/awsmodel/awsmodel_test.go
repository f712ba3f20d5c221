package awsmodel_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
)

func TestTimeIsEpochSeconds(t *testing.T) {
	tm := awsmodel.NewTime(time.Date(2026, 11, 21, 4, 35, 12, 345_678_000, time.UTC))
	b, err := json.Marshal(tm)
	if err != nil || string(b) != "1795235712.345" {
		t.Fatalf("marshal: %s %v", b, err)
	}
	var back awsmodel.Time
	if err := json.Unmarshal(b, &back); err != nil || !back.Equal(tm.Time) {
		t.Fatalf("round trip: %v %v", back, err)
	}
	if err := json.Unmarshal([]byte(`"2026-11-21T04:35:12Z"`), &back); err != nil || back.Unix() != 1795235712 {
		t.Fatalf("RFC 3339 input: %v %v", back, err)
	}
	for _, bad := range []string{`"yesterday"`, `1e300`, `true`} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Fatalf("%s accepted as a timestamp", bad)
		}
	}
}

func TestDecodeErrorsNameTheMember(t *testing.T) {
	cases := []struct{ body, want string }{
		{`{"clusterName": 7}`, `member "clusterName" cannot be a JSON number (expected a string)`},
		{`{"tags": {"a": 1}}`, `member "tags"`},
		{`{"tags": [{"key": []}]}`, `member "tags.key"`},
		{`{`, "unexpected end"},
		{`{"a":1}x`, "after the JSON object"},
		{`"str"`, "must be a JSON object"},
	}
	for _, tc := range cases {
		var in ecstypes.CreateClusterRequest
		err := awsmodel.Decode([]byte(tc.body), &in)
		var se *awsmodel.SerializationError
		if !errors.As(err, &se) || !strings.Contains(se.Detail, tc.want) {
			t.Errorf("%s: got %v, want a SerializationError containing %q", tc.body, err, tc.want)
		}
	}
	var in ecstypes.CreateClusterRequest
	if err := awsmodel.Decode([]byte(`{"clusterName":"a","unknownMember":{"x":1}}`), &in); err != nil || in.ClusterName != "a" {
		t.Fatalf("unknown members must be ignored: %v", err)
	}
	if err := awsmodel.Decode(nil, &in); err != nil {
		t.Fatalf("an empty body is an empty object: %v", err)
	}
}

func TestValidationMessages(t *testing.T) {
	in := &ecstypes.RegisterTaskDefinitionRequest{
		NetworkMode: "overlay",
		ContainerDefinitions: []ecstypes.ContainerDefinition{
			{Name: "a", PortMappings: []ecstypes.PortMapping{{Protocol: "sctp"}}},
		},
		Tags: []ecstypes.Tag{{Key: strings.Repeat("k", 129)}},
	}
	var v awsmodel.Validator
	in.Validate(&v)
	err := v.Err()
	var ve *awsmodel.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want a ValidationError, got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"4 validation errors detected",
		"Value null at 'family' failed to satisfy constraint: Member must not be null",
		`Value "overlay" at 'networkMode' failed to satisfy constraint: Member must satisfy enum value set: [bridge, host, awsvpc, none]`,
		"at 'containerDefinitions[0].portMappings[0].protocol'",
		"at 'tags[0].key' failed to satisfy constraint: Member must have length less than or equal to 128",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	var ok awsmodel.Validator
	(&ecstypes.CreateClusterRequest{ClusterName: "x", Tags: []ecstypes.Tag{{Key: "k", Value: "v"}}}).Validate(&ok)
	if ok.Err() != nil {
		t.Fatalf("a valid request failed: %v", ok.Err())
	}
}

func TestValidatorAllocatesNothingOnValidInput(t *testing.T) {
	in := &ecstypes.RegisterTaskDefinitionRequest{
		Family:      "f",
		NetworkMode: "awsvpc",
		ContainerDefinitions: []ecstypes.ContainerDefinition{
			{Name: "a", Image: "i", PortMappings: []ecstypes.PortMapping{{Protocol: "tcp"}}},
		},
		Tags: []ecstypes.Tag{{Key: "k", Value: "v"}},
	}
	allocs := testing.AllocsPerRun(100, func() {
		var v awsmodel.Validator
		in.Validate(&v)
		if v.Err() != nil {
			t.Fatal(v.Err())
		}
	})
	// The path stack is allocated once; nothing per member.
	if allocs > 1 {
		t.Fatalf("validating a valid request allocated %.0f times", allocs)
	}
}

// FuzzDispatch feeds arbitrary bodies to every ECS operation's decoder and
// validator. Nothing may panic, and every rejection must be one of the
// error types the front door maps to an AWS error.
func FuzzDispatch(f *testing.F) {
	f.Add(uint8(0), []byte(`{"clusterName":"x"}`))
	f.Add(uint8(3), []byte(`{"family":"f","containerDefinitions":[{"name":"a","image":"i","memory":5,"portMappings":[{"containerPort":80}]}]}`))
	f.Add(uint8(7), []byte(`{"tags":[{"key":"a","value":"b"}],"include":["TAGS"]}`))
	f.Add(uint8(9), []byte(`{"maxResults":1e99,"nextToken":null}`))
	f.Add(uint8(11), []byte(`[{"a":`))
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		name := ecstypes.Operations[int(op)%len(ecstypes.Operations)]
		_, err := ecstypes.Dispatch(t.Context(), ecstypes.Unimplemented{}, name, body)
		var (
			se  *awsmodel.SerializationError
			ve  *awsmodel.ValidationError
			nie *awsmodel.NotImplementedError
		)
		if err == nil || !(errors.As(err, &se) || errors.As(err, &ve) || errors.As(err, &nie)) {
			t.Fatalf("%s(%q): unexpected result %v", name, body, err)
		}
		if ve != nil && ve.Error() == "" {
			t.Fatal("empty validation message")
		}
	})
}
