package e2e

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/smithy-go"
)

// TestOtherProtocolsAnswerClearly drives the APIs Berth does not serve yet
// with their real SDK clients: each protocol gets an error in its own wire
// format that names what is missing, which the SDK decodes into an API error.
func TestOtherProtocolsAnswerClearly(t *testing.T) {
	b := startBerth(t)
	cfg := awsConfig(b.endpoint, b.key.AccessKeyID, b.key.SecretAccessKey, "")

	// CloudWatch over AWS Query (form body, XML replies), as older CLIs
	// send it, signed for "monitoring": a Query API Berth does not serve.
	code, msg := signedQuery(t, b, "monitoring", "Action=ListMetrics&Version=2010-08-01&Namespace=app")
	if code != "InvalidAction" || !strings.Contains(msg, "ListMetrics is an action of CloudWatch, which Berth does not implement yet") {
		t.Fatalf("CloudWatch via Query: %s: %s", code, msg)
	}
	// The Go SDK's CloudWatch client speaks Smithy RPCv2 CBOR.
	var ae smithy.APIError
	_, err := cloudwatch.NewFromConfig(cfg).PutMetricData(ctx(t), &cloudwatch.PutMetricDataInput{
		Namespace:  aws.String("app"),
		MetricData: []cwtypes.MetricDatum{{MetricName: aws.String("m"), Value: aws.Float64(1)}},
	})
	if !errors.As(err, &ae) || ae.ErrorCode() != "UnknownOperationException" || !strings.Contains(ae.ErrorMessage(), "PutMetricData") {
		t.Fatalf("CloudWatch via RPCv2 CBOR: %v", err)
	}
	// A known AWS JSON API that is not there yet.
	req, _ := http.NewRequest(http.MethodPost, b.endpoint+"/", strings.NewReader("{}"))
	req.Header.Set("X-Amz-Target", "Logs_20140328.PutLogEvents")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.Header.Get("X-Amzn-ErrorType") != "UnknownOperationException" {
		t.Fatalf("CloudWatch Logs target: %s", r.Header.Get("X-Amzn-ErrorType"))
	}

	// The AWS CLI v2 from Debian (2.9) sends CloudWatch requests over
	// Query; newer ones over JSON 1.0 or RPCv2 CBOR. Each must be told.
	c := newCLI(t, b)
	_, stderr, exit := c.run("cloudwatch", "list-metrics")
	if exit == 0 || !(strings.Contains(stderr, "(InvalidAction)") || strings.Contains(stderr, "(UnknownOperationException)")) ||
		!strings.Contains(stderr, "Berth does not implement") {
		t.Fatalf("CLI cloudwatch list-metrics: exit %d: %s", exit, stderr)
	}
}

// signedQuery sends an AWS Query request signed for service with the
// admin key, and returns the error code and message of the XML reply.
func signedQuery(t *testing.T, b *berth, service, form string) (code, msg string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.endpoint+"/", strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256([]byte(form))
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: b.key.AccessKeyID, SecretAccessKey: b.key.SecretAccessKey},
		req, hex.EncodeToString(sum[:]), service, "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var e struct {
		Code    string `xml:"Error>Code"`
		Message string `xml:"Error>Message"`
	}
	if err := xml.Unmarshal(raw, &e); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, reply %q: %v", resp.StatusCode, raw, err)
	}
	return e.Code, e.Message
}

// TestMetrics checks the Prometheus exposition counts requests by
// operation and result code.
func TestMetrics(t *testing.T) {
	b := startBerth(t)
	c := b.ecsClient()
	// A fresh store already holds what the control plane creates at its
	// first start (the load balancers' stickiness key).
	rev, err := strconv.Atoi(metricValue(t, b.endpoint, "berth_store_revision"))
	if err != nil {
		t.Fatal(err)
	}
	must[*ecs.CreateClusterOutput](t)(c.CreateCluster(ctx(t), &ecs.CreateClusterInput{ClusterName: aws.String("m")}))
	_, err = c.DescribeTaskDefinition(ctx(t), &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("none")})
	wantErr[error](t, err)
	rawCall(t, b.endpoint, "NoSuchThing", "{}", b.sign())

	resp, err := http.Get(b.endpoint + "/_berth/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	want := map[string]bool{
		`berth_api_requests_total{code="OK",operation="CreateCluster",service="ecs"} 1`:                       false,
		`berth_api_requests_total{code="ClientException",operation="DescribeTaskDefinition",service="ecs"} 1`: false,
		`berth_api_requests_total{code="UnknownOperationException",operation="unknown",service="ecs"} 1`:      false,
		`berth_api_request_duration_seconds_count{operation="CreateCluster",service="ecs"} 1`:                 false,
		fmt.Sprintf("berth_store_revision %d", rev+1):                                                         false,
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if _, ok := want[sc.Text()]; ok {
			want[sc.Text()] = true
		}
	}
	for line, seen := range want {
		if !seen {
			t.Errorf("metrics lack %s", line)
		}
	}
}

// metricValue returns the value of an unlabelled metric on the endpoint's
// Prometheus exposition.
func metricValue(t *testing.T, endpoint, name string) string {
	t.Helper()
	resp, err := http.Get(endpoint + "/_berth/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return v
		}
	}
	t.Fatalf("metrics lack %s", name)
	return ""
}
