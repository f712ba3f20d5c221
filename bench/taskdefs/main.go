// Command taskdefs measures RegisterTaskDefinition and DescribeTaskDefinition
// through the whole stack (HTTP, SigV4, JSON, validation, the fsync'd store)
// with 10,000 task definitions stored, driven by the AWS SDK for Go v2, and
// measures a bare write+fsync loop on the same disk as the write baseline.
//
//	go run ./bench/taskdefs                # defaults: 10,000 stored, 5 s per phase
//	go run ./bench/taskdefs -dir /var/tmp  # measure another disk
//
// It prints a Markdown table for docs/benchmarks.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/controlplane"
)

func main() {
	var (
		stored   = flag.Int("stored", 10000, "task definitions stored before measuring")
		families = flag.Int("families", 100, "families they are spread over")
		phase    = flag.Duration("phase", 5*time.Second, "duration of each measured phase")
		dir      = flag.String("dir", os.TempDir(), "directory on the disk to measure (a temporary folder is made inside)")
	)
	flag.Parse()
	work, err := os.MkdirTemp(*dir, "berth-bench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(work)

	cp, err := controlplane.Open(controlplane.Config{Listen: "127.0.0.1:0", DataDir: filepath.Join(work, "data")})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go cp.Serve(ctx)
	key := cp.Key()
	client := ecs.NewFromConfig(aws.Config{
		Region:       cp.Region(),
		Credentials:  credentials.NewStaticCredentialsProvider(key.AccessKeyID, key.SecretAccessKey, ""),
		BaseEndpoint: aws.String(cp.Endpoint()),
	})

	register := func(i int) error {
		_, err := client.RegisterTaskDefinition(ctx, taskDef(fmt.Sprintf("bench-%03d", i%*families), i))
		return err
	}
	start := time.Now()
	run(64, *stored, register)
	fmt.Fprintf(os.Stderr, "preloaded %d task definitions in %s\n", *stored, time.Since(start).Round(time.Millisecond))

	perFamily := *stored / *families
	describe := func(int) error {
		ref := fmt.Sprintf("bench-%03d:%d", rand.IntN(*families), 1+rand.IntN(perFamily))
		_, err := client.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(ref)})
		return err
	}
	// A page of 100 ARNs, newest first, starting at a random point of the
	// listing (a token from a previous page), filtered to ACTIVE.
	var tokens []*string
	for tok := (*string)(nil); ; {
		out, err := client.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{Sort: types.SortOrderDesc, NextToken: tok})
		if err != nil {
			log.Fatal(err)
		}
		if out.NextToken == nil {
			break
		}
		tok = out.NextToken
		tokens = append(tokens, tok)
	}
	list := func(int) error {
		_, err := client.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{Sort: types.SortOrderDesc, NextToken: tokens[rand.IntN(len(tokens))]})
		return err
	}
	fsync := fsyncLoop(work)

	fmt.Printf("Machine: %d cores, %s/%s, %s; %d task definitions stored; %s per phase.\n\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), *stored, *phase)
	fmt.Println("| what | concurrency | ops/s | p50 | p99 | vs bare fsync loop |")
	fmt.Println("|---|---:|---:|---:|---:|---:|")
	base := timed(1, *phase, fsync)
	row("bare write+fsync loop (baseline)", 1, base, base.rate)
	for _, c := range []int{1, 16} {
		row("RegisterTaskDefinition", c, timed(c, *phase, register), base.rate)
	}
	for _, c := range []int{1, 16} {
		row("DescribeTaskDefinition", c, timed(c, *phase, describe), 0)
	}
	row("ListTaskDefinitions (DESC, 100 per page)", 1, timed(1, *phase, list), 0)
}

func taskDef(family string, i int) *ecs.RegisterTaskDefinitionInput {
	return &ecs.RegisterTaskDefinitionInput{
		Family:      aws.String(family),
		NetworkMode: types.NetworkModeBridge,
		ContainerDefinitions: []types.ContainerDefinition{{
			Name:         aws.String("app"),
			Image:        aws.String(fmt.Sprintf("registry.local/app:%d", i)),
			Memory:       aws.Int32(256),
			Cpu:          256,
			PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(8080)}},
			Environment:  []types.KeyValuePair{{Name: aws.String("MODE"), Value: aws.String("bench")}},
			HealthCheck:  &types.HealthCheck{Command: []string{"CMD-SHELL", "true"}},
		}},
	}
}

// fsyncLoop returns one step of the baseline: append a record the size of a
// small task definition and fsync the file.
func fsyncLoop(dir string) func(int) error {
	f, err := os.Create(filepath.Join(dir, "fsync-baseline"))
	if err != nil {
		log.Fatal(err)
	}
	rec := make([]byte, 1024)
	return func(int) error {
		if _, err := f.Write(rec); err != nil {
			return err
		}
		return f.Sync()
	}
}

type result struct {
	rate     float64
	p50, p99 time.Duration
}

// run performs n operations on c workers.
func run(c, n int, op func(int) error) {
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := op(i); err != nil {
					log.Fatal(err)
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}

// timed runs op on c workers for d and reports the rate and latencies.
func timed(c int, d time.Duration, op func(int) error) result {
	var (
		mu   sync.Mutex
		lats []time.Duration
		wg   sync.WaitGroup
	)
	deadline := time.Now().Add(d)
	start := time.Now()
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var mine []time.Duration
			for i := w * 1_000_000; time.Now().Before(deadline); i++ {
				t0 := time.Now()
				if err := op(i); err != nil {
					log.Fatal(err)
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lats)
	pct := func(p float64) time.Duration { return lats[min(len(lats)-1, int(p*float64(len(lats))))] }
	return result{rate: float64(len(lats)) / elapsed.Seconds(), p50: pct(0.50), p99: pct(0.99)}
}

func row(what string, c int, r result, base float64) {
	ratio := "-"
	if base > 0 {
		ratio = fmt.Sprintf("%.2fx", r.rate/base)
	}
	fmt.Printf("| %s | %d | %.0f | %s | %s | %s |\n", what, c, r.rate, r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), ratio)
}
