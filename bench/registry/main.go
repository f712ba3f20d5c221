// Command registry measures push and pull throughput of one image through
// Berth's registry against Debian's docker-registry (the distribution
// registry, CNCF Distribution 2.8) on the same machine, in the same run, with
// the same client and the same image.
//
//	go run ./bench/registry                    # a 200 MiB image (one 150 MiB layer, 50 of 1 MiB), 5 rounds
//	go run ./bench/registry -rounds 3 -big 64 -small 20
//
// The client is go-containerregistry's remote package (what crane uses),
// pushing and pulling -jobs blobs at a time over loopback. Each round pushes
// the image to a fresh repository on each registry, in alternating order,
// then pulls it back, reading every blob to the end (the client verifies
// each digest as it reads). Berth runs in this process (control plane,
// embedded store, registry) with its usual authentication: the client logs
// in with the token from ECR's GetAuthorizationToken, as `docker login`
// does. The peer runs without authentication (its htpasswd check costs a
// bcrypt per request, which would only slow it down), storing on the same
// disk. It prints a Markdown table for docs/benchmarks.md.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berthdev/berth/bench/internal/benchutil"
	"github.com/berthdev/berth/internal/controlplane"
	"github.com/berthdev/berth/internal/sdkhttp"
)

type options struct {
	rounds, jobs int
	bigMiB       int
	smallCount   int
	dir          string
}

func main() {
	var o options
	flag.IntVar(&o.rounds, "rounds", 5, "push+pull rounds per registry")
	flag.IntVar(&o.jobs, "jobs", 4, "blobs pushed or pulled at once (crane's default is 4)")
	flag.IntVar(&o.bigMiB, "big", 150, "size of the large layer in MiB")
	flag.IntVar(&o.smallCount, "small", 50, "number of 1 MiB layers")
	flag.StringVar(&o.dir, "dir", os.TempDir(), "directory for both registries' storage (a temporary folder is made inside)")
	flag.Parse()
	if o.rounds < 1 || o.jobs < 1 || o.bigMiB < 0 || o.smallCount < 0 {
		log.Fatal("rounds and jobs must be positive, sizes not negative")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		log.Fatal(err)
	}
}

// target is one registry under test.
type target struct {
	name string
	host string
	auth authn.Authenticator
	// newRepo makes a repository for a round (Berth needs CreateRepository).
	newRepo func(ctx context.Context, repo string) error
	push    []time.Duration
	pull    []time.Duration
}

func run(ctx context.Context, o options) error {
	work, err := os.MkdirTemp(o.dir, "berth-bench-registry-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	img, size, err := buildImage(o)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "image: %d layers, %.1f MiB\n", o.smallCount+1, float64(size)/(1<<20))

	berth, stopBerth, err := startBerth(ctx, filepath.Join(work, "berth"))
	if err != nil {
		return err
	}
	defer stopBerth()
	peer, stopPeer, err := startDistribution(ctx, filepath.Join(work, "distribution"))
	if err != nil {
		return err
	}
	defer stopPeer()

	targets := []*target{berth, peer}
	for round := range o.rounds {
		order := targets
		if round%2 == 1 {
			order = []*target{peer, berth}
		}
		for _, t := range order {
			repo := fmt.Sprintf("bench/round%d", round)
			if err := t.newRepo(ctx, repo); err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			ref, err := name.ParseReference(t.host+"/"+repo+":v1", name.Insecure)
			if err != nil {
				return err
			}
			opts := []remote.Option{remote.WithContext(ctx), remote.WithAuth(t.auth), remote.WithJobs(o.jobs)}
			start := time.Now()
			if err := remote.Write(ref, img, opts...); err != nil {
				return fmt.Errorf("%s push: %w", t.name, err)
			}
			t.push = append(t.push, time.Since(start))
			start = time.Now()
			if err := pull(ref, opts, o.jobs); err != nil {
				return fmt.Errorf("%s pull: %w", t.name, err)
			}
			t.pull = append(t.pull, time.Since(start))
			fmt.Fprintf(os.Stderr, "round %d %-24s push %v pull %v\n", round+1, t.name, t.push[round].Round(time.Millisecond), t.pull[round].Round(time.Millisecond))
		}
	}

	mib := float64(size) / (1 << 20)
	fmt.Printf("| registry | push p50 | push MiB/s | pull p50 | pull MiB/s | push vs peer | pull vs peer |\n|---|---:|---:|---:|---:|---:|---:|\n")
	pp, pl := median(peer.push), median(peer.pull)
	for _, t := range []*target{peer, berth} {
		push, pul := median(t.push), median(t.pull)
		fmt.Printf("| %s | %v | %.0f | %v | %.0f | %.2fx | %.2fx |\n", t.name,
			push.Round(time.Millisecond), mib/push.Seconds(), pul.Round(time.Millisecond), mib/pul.Seconds(),
			pp.Seconds()/push.Seconds(), pl.Seconds()/pul.Seconds())
	}
	fmt.Printf("\n(%d rounds, %d blobs at a time, image %.0f MiB in %d layers; ratios are throughput relative to the peer: above 1 is faster)\n",
		o.rounds, o.jobs, mib, o.smallCount+1)
	return nil
}

// buildImage makes an image of random (incompressible) layers: one of
// -big MiB and -small of 1 MiB.
func buildImage(o options) (v1.Image, int64, error) {
	var layers []v1.Layer
	add := func(n int) error {
		b := make([]byte, n)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		layers = append(layers, static.NewLayer(b, types.OCILayer))
		return nil
	}
	if o.bigMiB > 0 {
		if err := add(o.bigMiB << 20); err != nil {
			return nil, 0, err
		}
	}
	for range o.smallCount {
		if err := add(1 << 20); err != nil {
			return nil, 0, err
		}
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layers...)
	if err != nil {
		return nil, 0, err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	var size int64
	for _, l := range layers {
		s, err := l.Size()
		if err != nil {
			return nil, 0, err
		}
		size += s
	}
	return img, size, nil
}

// pull fetches the manifest and config and reads every layer to the end,
// jobs at a time; the client verifies each digest.
func pull(ref name.Reference, opts []remote.Option, jobs int) error {
	img, err := remote.Image(ref, opts...)
	if err != nil {
		return err
	}
	if _, err := img.RawConfigFile(); err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	work := make(chan v1.Layer)
	errs := make(chan error, jobs)
	var wg sync.WaitGroup
	for range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l := range work {
				rc, err := l.Compressed()
				if err == nil {
					_, err = io.Copy(io.Discard, rc)
					if cerr := rc.Close(); err == nil {
						err = cerr
					}
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for _, l := range layers {
		work <- l
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// startBerth runs a control plane in this process and logs in to its
// registry with a token from GetAuthorizationToken.
func startBerth(ctx context.Context, dir string) (*target, func(), error) {
	cp, err := controlplane.Open(controlplane.Config{Listen: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		return nil, nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cp.Serve(sctx) }()
	stop := func() { cancel(); <-done }
	endpoint := cp.Endpoint()
	if err := benchutil.WaitUp(ctx, endpoint+"/_berth/health"); err != nil {
		stop()
		return nil, nil, err
	}
	key := cp.Key()
	client := ecr.NewFromConfig(aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(key.AccessKeyID, key.SecretAccessKey, ""),
		BaseEndpoint: aws.String(endpoint),
		HTTPClient:   sdkhttp.Client(),
	})
	tok, err := client.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		stop()
		return nil, nil, err
	}
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(tok.AuthorizationData[0].AuthorizationToken))
	if err != nil {
		stop()
		return nil, nil, err
	}
	user, pass, _ := strings.Cut(string(raw), ":")
	return &target{
		name: "Berth",
		host: strings.TrimPrefix(endpoint, "http://"),
		auth: &authn.Basic{Username: user, Password: pass},
		newRepo: func(ctx context.Context, repo string) error {
			_, err := client.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(repo)})
			return err
		},
	}, stop, nil
}

// startDistribution runs Debian's docker-registry on a free loopback port.
func startDistribution(ctx context.Context, dir string) (*target, func(), error) {
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		return nil, nil, errors.New("docker-registry is not installed: apt-get install docker-registry (make deps does)")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	port, err := benchutil.FreePort()
	if err != nil {
		return nil, nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cfg := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s/data\nhttp:\n  addr: %s\n", dir, addr), 0o644); err != nil {
		return nil, nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "serve", cfg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	if err := benchutil.WaitUp(ctx, "http://"+addr+"/v2/"); err != nil {
		stop()
		return nil, nil, fmt.Errorf("docker-registry: %w\n%s", err, stderr.String())
	}
	return &target{
		name:    "docker-registry 2.8 (peer)",
		host:    addr,
		auth:    authn.Anonymous,
		newRepo: func(context.Context, string) error { return nil },
	}, stop, nil
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
