package e2e

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/controlplane"
)

// Example shows the Go SDK quick start from the README against a Berth
// started in-process (with `berth up`, use its endpoint and the key in the
// credentials file it prints).
func Example() {
	dir, _ := os.MkdirTemp("", "berth-example-")
	defer os.RemoveAll(dir)
	cp, err := controlplane.Open(controlplane.Config{Listen: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go cp.Serve(ctx)
	key := cp.Key()

	// The README's quick start begins here.
	client := ecs.NewFromConfig(aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(key.AccessKeyID, key.SecretAccessKey, ""),
		BaseEndpoint: aws.String(cp.Endpoint()), // e.g. http://127.0.0.1:4566
	})
	cluster, err := client.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("demo")})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(aws.ToString(cluster.Cluster.ClusterArn))

	td, err := client.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("web"),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name:         aws.String("web"),
			Image:        aws.String("nginx:1.27"),
			Memory:       aws.Int32(128),
			PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(80)}},
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(aws.ToString(td.TaskDefinition.TaskDefinitionArn), td.TaskDefinition.Status)
	// Output:
	// arn:aws:ecs:us-east-1:000000000000:cluster/demo
	// arn:aws:ecs:us-east-1:000000000000:task-definition/web:1 ACTIVE
}
