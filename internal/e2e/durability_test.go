package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// buildBerth compiles cmd/berth once per test run.
func buildBerth(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berth-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "berth")
		out, err := exec.Command("go", "build", "-o", builtBin, "github.com/berthdev/berth/cmd/berth").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("building berth: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// freePortNumber is a free TCP port on loopback.
func freePortNumber(t *testing.T) int {
	t.Helper()
	_, p, _ := net.SplitHostPort(freePort(t))
	n, _ := strconv.Atoi(p)
	return n
}

const (
	durKeyID  = "AKIADURABILITYTEST00"
	durSecret = "durability-test-secret"
)

// startProcess starts `berth server` as a child process and waits until it
// is healthy.
func startProcess(t *testing.T, bin, dataDir, addr string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "server", "--listen", addr, "--data-dir", dataDir, "--log-level", "warn")
	cmd.Env = append(os.Environ(), "BERTH_ACCESS_KEY_ID="+durKeyID, "BERTH_SECRET_ACCESS_KEY="+durSecret)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	waitHealthy(t, "http://"+addr)
	return cmd
}

// TestKill9LosesNoAcknowledgedWrite runs concurrent writers against a real
// berth process, kills it with SIGKILL mid-stream, restarts it on the same
// data directory and checks that every acknowledged write is there and that
// the state is consistent (revisions contiguous, family bookkeeping intact).
func TestKill9LosesNoAcknowledgedWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a berth process")
	}
	bin := buildBerth(t)
	dir := t.TempDir()
	addr := freePort(t)
	proc := startProcess(t, bin, dir, addr)
	c := ecs.NewFromConfig(awsConfig("http://"+addr, durKeyID, durSecret, ""))

	const writers = 8
	var (
		mu       sync.Mutex
		acked    = map[string]string{} // task definition "family:rev" -> image written
		clusters = map[string]bool{}
		wg       sync.WaitGroup
		stop     = make(chan struct{})
	)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			family := fmt.Sprintf("dur-%d", w%4) // two writers share each family
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				image := fmt.Sprintf("img-%d-%d", w, i)
				in := web(family)
				in.ContainerDefinitions[0].Image = aws.String(image)
				out, err := c.RegisterTaskDefinition(ctx(t), in)
				if err != nil {
					return // the server died under us: only acknowledged writes count
				}
				mu.Lock()
				acked[fmt.Sprintf("%s:%d", family, out.TaskDefinition.Revision)] = image
				mu.Unlock()
				if i%5 == 0 {
					name := fmt.Sprintf("dur-c-%d-%d", w, i)
					if _, err := c.CreateCluster(ctx(t), &ecs.CreateClusterInput{ClusterName: aws.String(name)}); err != nil {
						return
					}
					mu.Lock()
					clusters[name] = true
					mu.Unlock()
				}
			}
		}(w)
	}
	// Let the writers run until enough writes are acknowledged, then kill.
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 400 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	proc.Wait()
	close(stop)
	wg.Wait()
	if len(acked) < 50 {
		t.Fatalf("only %d writes were acknowledged before the kill; the test needs more to mean anything", len(acked))
	}
	t.Logf("%d task definitions and %d clusters acknowledged before SIGKILL", len(acked), len(clusters))

	startProcess(t, bin, dir, addr)
	for ref, image := range acked {
		out, err := c.DescribeTaskDefinition(ctx(t), &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(ref)})
		if err != nil {
			t.Fatalf("acknowledged %s lost: %v", ref, err)
		}
		if got := aws.ToString(out.TaskDefinition.ContainerDefinitions[0].Image); got != image {
			t.Fatalf("%s has image %q, acknowledged %q", ref, got, image)
		}
	}
	names := keys(clusters)
	for len(names) > 0 {
		batch := names[:min(100, len(names))]
		names = names[len(batch):]
		desc, err := c.DescribeClusters(ctx(t), &ecs.DescribeClustersInput{Clusters: batch})
		if err != nil || len(desc.Failures) != 0 || len(desc.Clusters) != len(batch) {
			t.Fatalf("acknowledged clusters lost: %v %+v", err, desc.Failures)
		}
	}
	// Consistency: each family's revisions are 1..N with no gap, and the next
	// registration continues at N+1.
	for f := 0; f < 4; f++ {
		family := fmt.Sprintf("dur-%d", f)
		var revs []int
		p := ecs.NewListTaskDefinitionsPaginator(c, &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(family)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			for _, arn := range page.TaskDefinitionArns {
				n, _ := strconv.Atoi(arn[strings.LastIndex(arn, ":")+1:])
				revs = append(revs, n)
			}
		}
		for i, r := range revs {
			if r != i+1 {
				t.Fatalf("family %s revisions %v are not contiguous", family, revs)
			}
		}
		out, err := c.RegisterTaskDefinition(ctx(t), web(family))
		if err != nil {
			t.Fatal(err)
		}
		if int(out.TaskDefinition.Revision) != len(revs)+1 {
			t.Fatalf("family %s: next revision %d after %d stored", family, out.TaskDefinition.Revision, len(revs))
		}
		latest, err := c.DescribeTaskDefinition(ctx(t), &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(family)})
		if err != nil || latest.TaskDefinition.Status != types.TaskDefinitionStatusActive || latest.TaskDefinition.Revision != out.TaskDefinition.Revision {
			t.Fatalf("family %s latest after restart: %v %+v", family, err, latest)
		}
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
