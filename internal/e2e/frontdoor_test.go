package e2e

import (
	"bufio"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/smithy-go"
)

// TestOtherProtocolsAnswerClearly drives the APIs Berth does not serve yet
// with their real SDK clients: each protocol gets an error in its own wire
// format that names what is missing, which the SDK decodes into an API error.
func TestOtherProtocolsAnswerClearly(t *testing.T) {
	b := startBerth(t)
	cfg := awsConfig(b.endpoint, b.key.AccessKeyID, b.key.SecretAccessKey, "")

	// ELBv2 speaks AWS Query (form body, XML replies).
	_, err := elbv2.NewFromConfig(cfg).DescribeLoadBalancers(ctx(t), &elbv2.DescribeLoadBalancersInput{})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidAction" || !strings.Contains(ae.ErrorMessage(), "DescribeLoadBalancers") || !strings.Contains(ae.ErrorMessage(), "Elastic Load Balancing") {
		t.Fatalf("ELBv2 via Query: %v", err)
	}
	// The Go SDK's CloudWatch client speaks Smithy RPCv2 CBOR.
	_, err = cloudwatch.NewFromConfig(cfg).PutMetricData(ctx(t), &cloudwatch.PutMetricDataInput{
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

	c := newCLI(t, b)
	if stderr := c.fails("InvalidAction", "elbv2", "describe-load-balancers"); !strings.Contains(stderr, "Berth does not implement") {
		t.Fatalf("CLI elbv2: %s", stderr)
	}
}

// TestMetrics checks the Prometheus exposition counts requests by
// operation and result code.
func TestMetrics(t *testing.T) {
	b := startBerth(t)
	c := b.ecsClient()
	must[*ecs.CreateClusterOutput](t)(c.CreateCluster(ctx(t), &ecs.CreateClusterInput{ClusterName: aws.String("m")}))
	_, err := c.DescribeTaskDefinition(ctx(t), &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("none")})
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
		`berth_store_revision 1`: false,
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
