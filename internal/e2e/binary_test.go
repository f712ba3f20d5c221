package e2e

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/lb"
	"github.com/berthdev/berth/internal/runtime/docker"
	"github.com/berthdev/berth/internal/testimage"
)

// TestBerthUp runs the real binary the way the README says, reads its
// banner, uses the credentials it printed, and stops it with SIGTERM.
func TestBerthUp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the berth binary")
	}
	bin := buildBerth(t)
	dir := t.TempDir()
	addr := freePort(t)
	cmd := exec.Command(bin, "up", "--listen", addr, "--data-dir", dir)
	cmd.Env = append(os.Environ(), "BERTH_ACCESS_KEY_ID=", "BERTH_SECRET_ACCESS_KEY=")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var banner strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		banner.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), "can be left out there") {
			break
		}
	}
	out := banner.String()
	for _, want := range []string{
		"Endpoint:     http://" + addr,
		"Registry:     " + addr + " (ECR",
		"Region:       us-east-1",
		"Account:      000000000000",
		"Credentials:  " + dir + "/credentials (profile \"berth\") - new admin key created",
		"source " + dir + "/env",
		"aws ecs list-clusters --endpoint-url http://" + addr,
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("banner lacks %q:\n%s\nstderr: %s", want, out, stderr.String())
		}
	}
	// The admin key it announced works.
	env := readFile(t, dir+"/env")
	var id, secret string
	for _, line := range strings.Split(env, "\n") {
		if v, ok := strings.CutPrefix(line, "export AWS_ACCESS_KEY_ID="); ok {
			id = v
		}
		if v, ok := strings.CutPrefix(line, "export AWS_SECRET_ACCESS_KEY="); ok {
			secret = v
		}
	}
	c := ecs.NewFromConfig(awsConfig("http://"+addr, id, secret, ""))
	must[*ecs.ListClustersOutput](t)(c.ListClusters(ctx(t), &ecs.ListClustersInput{}))
	if strings.Contains(out+stderr.String(), secret) {
		t.Fatal("berth up printed the secret key")
	}
	// The registry answers on the same endpoint, and asks for credentials.
	if resp, err := http.Get("http://" + addr + "/v2/"); err != nil || resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
		t.Fatalf("GET /v2/ on berth up: %v %v", err, resp)
	}
	// The local agent registered this host in the default cluster and runs
	// tasks on Docker.
	if !strings.Contains(out, "Local agent:  running tasks on this host's Docker Engine") {
		t.Fatalf("banner does not report a running local agent:\n%s", out)
	}
	image := testimage.Require(t)
	var instances []string
	eventually(t, "the local agent registered", func() bool {
		instances = must[*ecs.ListContainerInstancesOutput](t)(c.ListContainerInstances(ctx(t), &ecs.ListContainerInstancesInput{})).ContainerInstanceArns
		return len(instances) == 1
	})
	must[*ecs.RegisterTaskDefinitionOutput](t)(c.RegisterTaskDefinition(ctx(t), &ecs.RegisterTaskDefinitionInput{
		Family:               aws.String("up-local"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String(image), Memory: aws.Int32(32), Command: []string{"sleep"}}},
	}))
	run := must[*ecs.RunTaskOutput](t)(c.RunTask(ctx(t), &ecs.RunTaskInput{TaskDefinition: aws.String("up-local")}))
	if len(run.Tasks) != 1 {
		t.Fatalf("run-task on berth up: %+v", run.Failures)
	}
	arn := aws.ToString(run.Tasks[0].TaskArn)
	t.Cleanup(func() {
		rt, err := docker.New(docker.Options{})
		if err != nil {
			return
		}
		defer rt.Close()
		cs, _ := rt.List(context.Background(), map[string]string{"com.amazonaws.ecs.task-arn": arn})
		for _, ct := range cs {
			_ = rt.Remove(context.Background(), ct.ID)
		}
	})
	eventually(t, "RUNNING on the local agent", func() bool { return aws.ToString(describeTask(t, c, "default", arn).LastStatus) == "RUNNING" })
	must[*ecs.StopTaskOutput](t)(c.StopTask(ctx(t), &ecs.StopTaskInput{Task: aws.String(arn)}))
	eventually(t, "STOPPED", func() bool { return aws.ToString(describeTask(t, c, "default", arn).LastStatus) == "STOPPED" })

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("berth up did not exit cleanly on SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("berth up did not stop within 15 s of SIGTERM")
	}
}

// lockedBuffer is a bytes.Buffer safe to read while a process writes it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestBerthCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the berth binary")
	}
	bin := buildBerth(t)
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"version"}, 0, "berth dev"},
		{[]string{"help"}, 0, "Run everything on this machine"},
		{[]string{"--help"}, 0, "BERTH_ACCESS_KEY_ID"},
		{[]string{"help", "up"}, 0, "-data-dir"},
		{[]string{"up", "-h"}, 0, "-insecure-skip-auth"},
		{nil, 2, "Usage:"},
		{[]string{"launch"}, 2, `unknown command "launch"`},
		{[]string{"up", "--no-such-flag"}, 2, "flag provided but not defined"},
		{[]string{"server", "--log-level", "loud"}, 2, "--log-level"},
		{[]string{"up", "--account-id", "12", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0"}, 1, "12 digits"},
		{[]string{"up", "extra"}, 2, `unexpected argument "extra"`},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, err := exec.Command(bin, tc.args...).CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code || !strings.Contains(string(out), tc.want) {
				t.Fatalf("exit %d (want %d), output lacks %q:\n%s", code, tc.code, tc.want, out)
			}
		})
	}
}

// TestBerthGOMAXPROCS checks that berth server runs with lb.Procs threads
// by default and with GOMAXPROCS when it is set, as its
// go_sched_gomaxprocs_threads metric reports.
func TestBerthGOMAXPROCS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the berth binary")
	}
	bin := buildBerth(t)
	cases := []struct {
		env  string
		want int
	}{
		{"GOMAXPROCS=5", 5}, // no lb.Procs(n) is 5
		{"GOMAXPROCS=0", lb.Procs(runtime.NumCPU())},
	}
	if lb.CPUQuota() {
		t.Log("under a CPU quota berth keeps the runtime's default: only the explicit GOMAXPROCS is checked")
		cases = cases[:1]
	}
	for _, tc := range cases {
		t.Run(tc.env, func(t *testing.T) {
			_, v, _ := strings.Cut(tc.env, "=")
			t.Setenv("GOMAXPROCS", v) // 0 is no setting, for the Go runtime and for berth
			addr := freePort(t)
			startProcess(t, bin, t.TempDir(), addr)
			if got := metricValue(t, "http://"+addr, "go_sched_gomaxprocs_threads"); got != strconv.Itoa(tc.want) {
				t.Fatalf("go_sched_gomaxprocs_threads = %s, want %d", got, tc.want)
			}
		})
	}
}
