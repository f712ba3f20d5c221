package e2e

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/berthdev/berth/internal/controlplane"
	"github.com/berthdev/berth/internal/sdkhttp"
	"github.com/berthdev/berth/internal/testcluster"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

// berth is one running control plane under test.
type berth struct {
	cp       *controlplane.ControlPlane
	endpoint string
	key      controlplane.AdminKey
}

// startBerth starts a control plane on a free loopback port with its data in
// a fresh temporary directory; it stops when the test ends.
func startBerth(t testing.TB, mutate ...func(*controlplane.Config)) *berth {
	t.Helper()
	cfg := controlplane.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir()}
	for _, m := range mutate {
		m(&cfg)
	}
	cp, err := controlplane.Open(cfg)
	if err != nil {
		t.Fatalf("starting berth: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cp.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("berth stopped with: %v", err)
		}
	})
	b := &berth{cp: cp, endpoint: cp.Endpoint(), key: cp.Key()}
	waitHealthy(t, b.endpoint)
	return b
}

// waitHealthy polls the health endpoint until it answers 200.
func waitHealthy(t testing.TB, endpoint string) { testcluster.WaitHealthy(t, endpoint) }

// awsConfig is an SDK configuration signed with the given key.
func awsConfig(endpoint, id, secret, token string) aws.Config {
	return aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(id, secret, token),
		BaseEndpoint: aws.String(endpoint),
		// Errors must surface at once, not be retried into a timeout.
		RetryMaxAttempts: 1,
		// Loopback: see sdkhttp for the SDK's closed-connection race.
		HTTPClient: sdkhttp.Client(),
	}
}

// ecsClient is an ECS client signed with the admin key.
func (b *berth) ecsClient() *ecs.Client {
	return ecs.NewFromConfig(awsConfig(b.endpoint, b.key.AccessKeyID, b.key.SecretAccessKey, ""))
}

// ctx is a context for one test's requests.
func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// wantErr asserts err is (or wraps) an error of type T and returns it.
func wantErr[T error](t testing.TB, err error) T {
	t.Helper()
	var target T
	if err == nil {
		t.Fatalf("want %T, got success", target)
	}
	if !errors.As(err, &target) {
		t.Fatalf("want %T, got %T: %v", target, err, err)
	}
	return target
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}
