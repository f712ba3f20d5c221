package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/smithy-go"

	"github.com/berthdev/berth/internal/controlplane"
)

const ecsTarget = "AmazonEC2ContainerServiceV20141113."

// rawRequest builds an ECS JSON request; sign signs it unless nil.
type signing struct {
	id, secret, region string
	at                 time.Time
}

func rawCall(t *testing.T, endpoint, op, body string, s *signing) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", ecsTarget+op)
	if s != nil {
		sum := sha256.Sum256([]byte(body))
		err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: s.id, SecretAccessKey: s.secret},
			req, hex.EncodeToString(sum[:]), "ecs", s.region, s.at)
		if err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("reply is not JSON: %q", raw)
		}
	}
	return resp, m
}

func (b *berth) sign() *signing {
	return &signing{id: b.key.AccessKeyID, secret: b.key.SecretAccessKey, region: "us-east-1", at: time.Now()}
}

func TestAuthRejections(t *testing.T) {
	b := startBerth(t)
	cases := []struct {
		name   string
		sign   *signing
		code   string
		status int
		msg    string
	}{
		{"unsigned", nil, "MissingAuthenticationTokenException", 403, ""},
		{"wrong secret", &signing{b.key.AccessKeyID, "not-the-secret", "us-east-1", time.Now()}, "InvalidSignatureException", 0, "signature we calculated does not match"},
		{"unknown key", &signing{"AKIAUNKNOWNKEY000000", b.key.SecretAccessKey, "us-east-1", time.Now()}, "UnrecognizedClientException", 0, "security token"},
		{"stale date", &signing{b.key.AccessKeyID, b.key.SecretAccessKey, "us-east-1", time.Now().Add(-20 * time.Minute)}, "InvalidSignatureException", 0, "Signature expired"},
		{"future date", &signing{b.key.AccessKeyID, b.key.SecretAccessKey, "us-east-1", time.Now().Add(20 * time.Minute)}, "InvalidSignatureException", 0, "not yet current"},
		{"other region", &signing{b.key.AccessKeyID, b.key.SecretAccessKey, "eu-west-1", time.Now()}, "InvalidSignatureException", 0, "region"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := rawCall(t, b.endpoint, "ListClusters", "{}", tc.sign)
			if got := resp.Header.Get("X-Amzn-ErrorType"); got != tc.code || body["__type"] != tc.code {
				t.Fatalf("error type header %q body %v, want %s", got, body["__type"], tc.code)
			}
			if resp.StatusCode < 400 || (tc.status != 0 && resp.StatusCode != tc.status) {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if msg, _ := body["message"].(string); !strings.Contains(msg, tc.msg) {
				t.Fatalf("message %q lacks %q", msg, tc.msg)
			}
			if strings.Contains(resp.Header.Get("X-Amzn-ErrorType")+body["message"].(string), b.key.SecretAccessKey) {
				t.Fatal("the secret leaked into the error")
			}
		})
	}
	// The same through the SDK: typed API errors with the AWS codes.
	for _, tc := range []struct{ id, secret, code string }{
		{b.key.AccessKeyID, "wrong", "InvalidSignatureException"},
		{"AKIAUNKNOWNKEY000000", "x", "UnrecognizedClientException"},
	} {
		c := ecs.NewFromConfig(awsConfig(b.endpoint, tc.id, tc.secret, ""))
		_, err := c.ListClusters(ctx(t), &ecs.ListClustersInput{})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != tc.code {
			t.Fatalf("SDK error %v, want %s", err, tc.code)
		}
	}
	// A correctly signed request passes.
	resp, body := rawCall(t, b.endpoint, "ListClusters", "{}", b.sign())
	if resp.StatusCode != 200 {
		t.Fatalf("signed request: %d %v", resp.StatusCode, body)
	}
}

func TestWireProtocol(t *testing.T) {
	b := startBerth(t)
	resp, body := rawCall(t, b.endpoint, "RegisterTaskDefinition",
		`{"family":"wire","containerDefinitions":[{"name":"a","image":"i","memory":32}]}`, b.sign())
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
		t.Fatalf("status %d content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if id := resp.Header.Get("x-amzn-RequestId"); len(id) != 36 {
		t.Fatalf("request id %q", id)
	}
	td := body["taskDefinition"].(map[string]any)
	at, ok := td["registeredAt"].(float64)
	if !ok || time.Since(time.Unix(int64(at), 0)) > time.Minute {
		t.Fatalf("registeredAt must be epoch seconds, got %#v", td["registeredAt"])
	}
	// Empty lists in outputs are sent as [] as AWS does.
	_, list := rawCall(t, b.endpoint, "ListClusters", "{}", b.sign())
	if arns, ok := list["clusterArns"].([]any); !ok || len(arns) != 0 {
		t.Fatalf("empty clusterArns sent as %#v", list["clusterArns"])
	}

	errCases := []struct {
		name, op, body, code string
		status               int
		msg                  string
	}{
		{"wrong member type", "CreateCluster", `{"clusterName":5}`, "SerializationException", 400, "clusterName"},
		{"malformed json", "CreateCluster", `{"clusterName":`, "SerializationException", 400, "malformed"},
		{"trailing garbage", "CreateCluster", `{} {}`, "SerializationException", 400, "after"},
		{"not an object", "CreateCluster", `[1,2]`, "SerializationException", 400, "object"},
		{"unknown operation", "LaunchRockets", `{}`, "UnknownOperationException", 400, "LaunchRockets"},
		{"missing required member", "DescribeTaskDefinition", `{}`, "InvalidParameterException", 400, "taskDefinition"},
		{"unknown member ignored, then rules", "RegisterTaskDefinition", `{"family":"f","futureField":1,"containerDefinitions":[{"name":"a","image":"i"}]}`, "ClientException", 400, "memory"},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := rawCall(t, b.endpoint, tc.op, tc.body, b.sign())
			if resp.StatusCode != tc.status || body["__type"] != tc.code || resp.Header.Get("X-Amzn-ErrorType") != tc.code {
				t.Fatalf("got %d %v, want %d %s", resp.StatusCode, body, tc.status, tc.code)
			}
			if msg, _ := body["message"].(string); !strings.Contains(msg, tc.msg) {
				t.Fatalf("message %q lacks %q", msg, tc.msg)
			}
		})
	}

	big := `{"clusterName":"` + strings.Repeat("x", 3<<20) + `"}`
	resp, _ = rawCall(t, b.endpoint, "CreateCluster", big, b.sign())
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: status %d", resp.StatusCode)
	}

	h, err := http.Get(b.endpoint + "/_berth/health")
	if err != nil || h.StatusCode != 200 {
		t.Fatalf("health: %v %v", h, err)
	}
	h.Body.Close()
}

func TestInsecureModeAcceptsUnsigned(t *testing.T) {
	b := startBerth(t, func(c *controlplane.Config) { c.Insecure = true })
	resp, body := rawCall(t, b.endpoint, "CreateCluster", `{"clusterName":"open"}`, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("insecure mode refused an unsigned request: %d %v", resp.StatusCode, body)
	}
}

func TestAdminKeyPersistsAndCanBeSet(t *testing.T) {
	dir := t.TempDir()
	first, err := controlplane.Open(controlplane.Config{Listen: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	key := first.Key()
	if !first.KeyCreated || !strings.HasPrefix(key.AccessKeyID, "AKIA") || len(key.AccessKeyID) != 20 || len(key.SecretAccessKey) != 40 {
		t.Fatalf("generated key: created=%v id=%q secret length %d", first.KeyCreated, key.AccessKeyID, len(key.SecretAccessKey))
	}
	cred := readFile(t, first.CredentialsFile)
	if !strings.Contains(cred, "[berth]") || !strings.Contains(cred, key.SecretAccessKey) {
		t.Fatalf("credentials file: %q", cred)
	}
	if st, err := os.Stat(first.CredentialsFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file mode: %v %v", st.Mode(), err)
	}
	env := readFile(t, first.EnvFile)
	if !strings.Contains(env, "export AWS_ACCESS_KEY_ID="+key.AccessKeyID) || !strings.Contains(env, "AWS_ENDPOINT_URL="+first.Endpoint()) {
		t.Fatalf("env file: %q", env)
	}
	first.Close()
	second, err := controlplane.Open(controlplane.Config{Listen: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if second.KeyCreated || second.Key() != key {
		t.Fatalf("restart changed the admin key")
	}
	second.Close()
	explicit := controlplane.AdminKey{AccessKeyID: "AKIAEXPLICIT00000000", SecretAccessKey: "explicit-secret"}
	third := startBerth(t, func(c *controlplane.Config) { c.DataDir = dir; c.AdminKey = explicit })
	c := ecs.NewFromConfig(awsConfig(third.endpoint, explicit.AccessKeyID, explicit.SecretAccessKey, ""))
	must[*ecs.ListClustersOutput](t)(c.ListClusters(ctx(t), &ecs.ListClustersInput{}))
	resp, _ := rawCall(t, third.endpoint, "ListClusters", "{}", &signing{key.AccessKeyID, key.SecretAccessKey, "us-east-1", time.Now()})
	if resp.StatusCode == 200 {
		t.Fatal("the stored key still works while an explicit key is configured")
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSpace(b))
}

// TestEmptyListsAsECSSendsThem checks the raw JSON: lists ECS always
// returns are sent as [] even when empty, and absent ones are left out.
func TestEmptyListsAsECSSendsThem(t *testing.T) {
	b := startBerth(t)
	_, out := rawCall(t, b.endpoint, "RegisterTaskDefinition", `{"family":"lists","containerDefinitions":[{"name":"a","image":"i","memory":32}]}`, b.sign())
	td := out["taskDefinition"].(map[string]any)
	c := td["containerDefinitions"].([]any)[0].(map[string]any)
	for _, k := range []string{"portMappings", "environment", "mountPoints", "volumesFrom", "systemControls"} {
		if l, ok := c[k].([]any); !ok || len(l) != 0 {
			t.Errorf("container %s = %#v, want []", k, c[k])
		}
	}
	for _, k := range []string{"volumes", "placementConstraints", "requiresAttributes"} {
		if l, ok := td[k].([]any); !ok || len(l) != 0 {
			t.Errorf("task definition %s = %#v, want []", k, td[k])
		}
	}
	if _, ok := c["links"]; ok {
		t.Errorf("absent links were sent: %#v", c["links"])
	}
	if _, ok := td["networkMode"]; ok {
		t.Errorf("networkMode was not given but is returned (ECS leaves it out)")
	}
	_, cl := rawCall(t, b.endpoint, "CreateCluster", `{"clusterName":"lists"}`, b.sign())
	cluster := cl["cluster"].(map[string]any)
	for _, k := range []string{"tags", "statistics", "capacityProviders", "defaultCapacityProviderStrategy"} {
		if l, ok := cluster[k].([]any); !ok || len(l) != 0 {
			t.Errorf("cluster %s = %#v, want []", k, cluster[k])
		}
	}
}
