package ecs_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/api/ecs"
	"github.com/berthdev/berth/internal/api/supporttest"
	"github.com/berthdev/berth/internal/store/bolt"
)

// FuzzHandlers sends arbitrary bodies through the whole ECS API path:
// decoding, model validation, ECS's own rules and the store. A request may
// succeed or be refused with a client error; it must never panic or end in
// an internal error, and the store must stay readable.
func FuzzHandlers(f *testing.F) {
	seeds := []struct {
		op   string
		body string
	}{
		{"RegisterTaskDefinition", `{"family":"f","containerDefinitions":[{"name":"a","image":"i","memory":64,"portMappings":[{"containerPort":80,"hostPort":0}],"healthCheck":{"command":["CMD","true"]},"dependsOn":[{"containerName":"b","condition":"START"}]},{"name":"b","image":"i","memoryReservation":32}],"cpu":"1 vcpu","memory":"0.5GB","networkMode":"bridge"}`},
		{"RegisterTaskDefinition", `{"family":"g","networkMode":"awsvpc","requiresCompatibilities":["FARGATE"],"cpu":"256","memory":"512","containerDefinitions":[{"name":"a","image":"i"}]}`},
		{"CreateCluster", `{"clusterName":"c","tags":[{"key":"a","value":"b"}],"capacityProviders":["FARGATE"]}`},
		{"DescribeClusters", `{"clusters":["c","arn:aws:ecs:us-east-1:000000000000:cluster/c"],"include":["STATISTICS","TAGS"]}`},
		{"ListTaskDefinitions", `{"sort":"DESC","maxResults":1,"nextToken":"L2Vjcy90YXNrZGVmcy9m"}`},
		{"DescribeTaskDefinition", `{"taskDefinition":"f:1"}`},
		{"DeleteTaskDefinitions", `{"taskDefinitions":["f:1","arn:aws:ecs:us-east-1:000000000000:task-definition/f:1"]}`},
		{"TagResource", `{"resourceArn":"arn:aws:ecs:us-east-1:000000000000:cluster/c","tags":[{"key":"x","value":"y"}]}`},
		{"PutAccountSetting", `{"name":"containerInsights","value":"enabled","principalArn":"arn:aws:iam::000000000000:user/u"}`},
		{"ListAttributes", `{"cluster":"c","targetType":"container-instance","attributeName":"a"}`},
		{"CreateService", `{"cluster":"c","serviceName":"s","taskDefinition":"f","desiredCount":1,"clientToken":"t-1","deploymentConfiguration":{"maximumPercent":150,"minimumHealthyPercent":50,"deploymentCircuitBreaker":{"enable":true,"rollback":true}},"placementConstraints":[{"type":"distinctInstance"}],"placementStrategy":[{"type":"spread","field":"instanceId"}],"propagateTags":"SERVICE","tags":[{"key":"a","value":"b"}]}`},
		{"CreateService", `{"cluster":"c","serviceName":"d","taskDefinition":"f:1","schedulingStrategy":"DAEMON","deploymentConfiguration":{"minimumHealthyPercent":50}}`},
		{"UpdateService", `{"cluster":"c","service":"s","desiredCount":3,"taskDefinition":"f","forceNewDeployment":true,"deploymentConfiguration":{"minimumHealthyPercent":100},"placementConstraints":[]}`},
		{"DescribeServices", `{"cluster":"c","services":["s","arn:aws:ecs:us-east-1:000000000000:service/c/s","x"],"include":["TAGS"]}`},
		{"ListServices", `{"cluster":"c","maxResults":1,"schedulingStrategy":"REPLICA","launchType":"EC2"}`},
		{"ListServiceDeployments", `{"cluster":"c","service":"s","status":["IN_PROGRESS","STOPPED"],"createdAt":{"after":1},"maxResults":1}`},
		{"DescribeServiceDeployments", `{"serviceDeploymentArns":["arn:aws:ecs:us-east-1:000000000000:service-deployment/c/s/AAAAAAAAAAAAAAAAAAAAA"]}`},
		{"StopServiceDeployment", `{"serviceDeploymentArn":"arn:aws:ecs:us-east-1:000000000000:service-deployment/c/s/AAAAAAAAAAAAAAAAAAAAA","stopType":"ROLLBACK"}`},
		{"DeleteService", `{"cluster":"c","service":"s","force":true}`},
		{"ListServicesByNamespace", `{"namespace":"ns"}`},
	}
	ops := []string{}
	for _, s := range seeds {
		ops = append(ops, s.op)
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s.body))
	}
	st, err := bolt.Open(filepath.Join(f.TempDir(), "fuzz.db"), bolt.Options{NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	svc, err := ecs.New(ecs.Config{Store: st, Region: "us-east-1", Account: "000000000000", Now: func() time.Time { return time.Unix(1_800_000_000, 0) }})
	if err != nil {
		f.Fatal(err)
	}
	dispatch := svc.JSONService().Dispatch
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		name := ops[int(op)%len(ops)]
		_, err := dispatch(context.Background(), name, body)
		supporttest.RequireClientError(t, name, body, err)
		if err == nil {
			return
		}
		// The store still answers.
		if _, err := dispatch(context.Background(), "ListTaskDefinitions", []byte(`{}`)); err != nil {
			t.Fatalf("store unreadable after %s(%q): %v", name, body, err)
		}
	})
}
