// Command lb measures requests per second and latency through Berth's load
// balancer against the same backends reached directly and through Debian's
// nginx as a reverse proxy, side by side in one run, with wrk at fixed
// concurrency.
//
//	go run ./bench/lb                               # 3 backends; -c 1 and -c 64 connections, 10 s each, 5 rounds
//	go run ./bench/lb -duration 5s -rounds 1
//	go run ./bench/lb -backend nginx                # nginx answering from memory as the backends
//	GOMAXPROCS=2 go run ./bench/lb                  # Berth without the GOMAXPROCS berth up sets (lb.Procs)
//	go run ./bench/lb -hold                         # set up, print the URLs and wait: for profiling by hand
//
// The backends are the test application (internal/testimage/testapp)
// running on this host, answering GET /health with "ok". nginx proxies to
// them with an upstream of keep-alive connections (the configuration nginx
// documents for proxying HTTP/1.1 with keep-alive), one worker per core, no
// access log. Berth runs in this process: a control plane with its load
// balancer, configured through the ELBv2 API with the AWS SDK (an
// application load balancer, an ip target group with the three backends,
// an HTTP listener), measured once its targets are healthy, with the
// GOMAXPROCS berth up sets unless GOMAXPROCS is set. "direct" is wrk
// against one backend. Each round runs every target at each concurrency in a
// rotating order. It prints a Markdown table for docs/benchmarks.md with each
// proxy's throughput relative to nginx's and its added p50 latency over
// direct at the lowest concurrency.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/berthdev/berth/bench/internal/benchutil"
	"github.com/berthdev/berth/internal/controlplane"
	"github.com/berthdev/berth/internal/lb"
	"github.com/berthdev/berth/internal/sdkhttp"
)

type options struct {
	backends    int
	rounds      int
	duration    time.Duration
	connections []int
	dir         string
	backend     string
	hold        bool
}

func main() {
	var o options
	var conns string
	flag.IntVar(&o.backends, "backends", 3, "backend processes")
	flag.IntVar(&o.rounds, "rounds", 5, "rounds (each runs every target at every concurrency); the figures are their medians")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "wrk duration per run")
	flag.StringVar(&conns, "c", "1,64", "comma-separated wrk connection counts (the first is the low-load one)")
	flag.StringVar(&o.dir, "dir", os.TempDir(), "working directory (a temporary folder is made inside)")
	flag.StringVar(&o.backend, "backend", "testapp", "the backends: testapp (Berth's test application, Go net/http) or nginx (nginx answering from memory, one worker each)")
	flag.BoolVar(&o.hold, "hold", false, "set everything up, print the URLs and wait for an interrupt instead of running wrk (for profiling by hand)")
	flag.Parse()
	for _, s := range strings.Split(conns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			log.Fatalf("-c %q: want positive integers", conns)
		}
		o.connections = append(o.connections, n)
	}
	if o.backend != "testapp" && o.backend != "nginx" {
		log.Fatalf("-backend %q: want testapp or nginx", o.backend)
	}
	// Berth runs in this process with the GOMAXPROCS berth up gives it.
	lb.SetProcs()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		log.Fatal(err)
	}
}

// result is one wrk run.
type result struct {
	rps      float64
	p50, p99 time.Duration
}

func run(ctx context.Context, o options) error {
	for _, tool := range []string{"wrk", "nginx"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed: apt-get install wrk nginx", tool)
		}
	}
	work, err := os.MkdirTemp(o.dir, "berth-bench-lb-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	start := startBackends
	if o.backend == "nginx" {
		start = startNginxBackends
	}
	backends, stopBackends, err := start(ctx, work, o.backends)
	if err != nil {
		return err
	}
	defer stopBackends()
	nginxURL, stopNginx, err := startNginx(ctx, work, backends)
	if err != nil {
		return err
	}
	defer stopNginx()
	berthURL, stopBerth, err := startBerth(ctx, filepath.Join(work, "berth"), backends)
	if err != nil {
		return err
	}
	defer stopBerth()

	targets := []struct{ name, url string }{
		{"direct (one backend)", "http://" + backends[0] + "/health"},
		{"nginx 1.22 (peer)", nginxURL + "/health"},
		{"Berth", berthURL + "/health"},
	}
	if o.hold {
		for _, t := range targets {
			fmt.Printf("%-22s %s\n", t.name, t.url)
		}
		fmt.Fprintf(os.Stderr, "holding (pid %d); interrupt to stop\n", os.Getpid())
		<-ctx.Done()
		return nil
	}
	results := map[string]map[int][]result{}
	for _, t := range targets {
		results[t.name] = map[int][]result{}
	}
	for round := range o.rounds {
		for _, c := range o.connections {
			for i := range targets {
				t := targets[(i+round)%len(targets)]
				r, err := runWrk(ctx, t.url, c, o.duration)
				if err != nil {
					return fmt.Errorf("%s: %w", t.name, err)
				}
				results[t.name][c] = append(results[t.name][c], r)
				fmt.Fprintf(os.Stderr, "round %d c=%-3d %-22s %8.0f req/s  p50 %-9v p99 %v\n", round+1, c, t.name, r.rps, r.p50, r.p99)
			}
		}
	}

	low := o.connections[0]
	direct := median(results[targets[0].name][low]).p50
	fmt.Printf("| target | connections | req/s | p50 | p99 | req/s vs nginx | added p50 vs direct |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range o.connections {
		peer := median(results[targets[1].name][c]).rps
		for _, t := range targets {
			m := median(results[t.name][c])
			added := "-"
			if c == low && t.name != targets[0].name {
				added = (m.p50 - direct).String()
			}
			fmt.Printf("| %s | %d | %.0f | %v | %v | %.2fx | %s |\n", t.name, c, m.rps, m.p50, m.p99, m.rps/peer, added)
		}
	}
	fmt.Printf("\n(%d rounds of %v per run, medians; %d %s backends; wrk with 2 threads at -c 64, 1 thread at -c 1; %d cores shared by wrk, the proxies and the backends; Berth with GOMAXPROCS=%d)\n",
		o.rounds, o.duration, len(backends), o.backend, goruntime.NumCPU(), goruntime.GOMAXPROCS(0))
	return nil
}

// startBackends builds the test application and runs n copies on free
// loopback ports.
func startBackends(ctx context.Context, dir string, n int) ([]string, func(), error) {
	bin := filepath.Join(dir, "testapp")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/berthdev/berth/internal/testimage/testapp")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("building the test application: %v\n%s", err, out)
	}
	var addrs []string
	var cmds []*exec.Cmd
	stop := func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}
	for i := range n {
		port, err := benchutil.FreePort()
		if err != nil {
			stop()
			return nil, nil, err
		}
		cmd := exec.CommandContext(ctx, bin, "serve", "-port", strconv.Itoa(port), "-name", fmt.Sprintf("backend-%d", i))
		if err := cmd.Start(); err != nil {
			stop()
			return nil, nil, err
		}
		cmds = append(cmds, cmd)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err := benchutil.WaitUp(ctx, "http://"+addr+"/health"); err != nil {
			stop()
			return nil, nil, err
		}
		addrs = append(addrs, addr)
	}
	return addrs, stop, nil
}

// startNginx runs nginx as a keep-alive reverse proxy to the backends.
func startNginx(ctx context.Context, dir string, backends []string) (string, func(), error) {
	port, err := benchutil.FreePort()
	if err != nil {
		return "", nil, err
	}
	prefix := filepath.Join(dir, "nginx")
	var servers strings.Builder
	for _, b := range backends {
		fmt.Fprintf(&servers, "    server %s;\n", b)
	}
	conf := nginxHead(prefix, "auto") + fmt.Sprintf(`  proxy_temp_path %s/proxy;
  upstream backends {
%s    keepalive 128;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:%d;
    location / {
      proxy_pass http://backends;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }
}
`, prefix, servers.String(), port)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	stop, err := runNginx(ctx, prefix, conf, url+"/health")
	if err != nil {
		return "", nil, err
	}
	return url, stop, nil
}

// startNginxBackends runs n nginx processes of one worker each, answering
// every request with a fixed "ok" from memory: backends that cost little
// per request, so that what a proxy adds stands out.
func startNginxBackends(ctx context.Context, dir string, n int) ([]string, func(), error) {
	var addrs []string
	var stops []func()
	stop := func() {
		for _, s := range stops {
			s()
		}
	}
	for i := range n {
		port, err := benchutil.FreePort()
		if err != nil {
			stop()
			return nil, nil, err
		}
		prefix := filepath.Join(dir, fmt.Sprintf("backend-%d", i))
		conf := nginxHead(prefix, "1") + fmt.Sprintf(`  server {
    listen 127.0.0.1:%d;
    location / { default_type text/plain; return 200 "ok"; }
  }
}
`, port)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s, err := runNginx(ctx, prefix, conf, "http://"+addr+"/health")
		if err != nil {
			stop()
			return nil, nil, err
		}
		stops = append(stops, s)
		addrs = append(addrs, addr)
	}
	return addrs, stop, nil
}

// nginxHead is the start of an nginx configuration, up to inside its http
// block: in the foreground, files under prefix, no access log, and client
// connections kept alive as long as wrk likes (nginx closes them after 1000
// requests by default).
func nginxHead(prefix, workers string) string {
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;\n"
	}
	return fmt.Sprintf(`%sworker_processes %s;
daemon off;
pid %s/nginx.pid;
error_log %s/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path %s/body;
`, user, workers, prefix, prefix, prefix)
}

// runNginx writes conf under prefix, starts nginx in the foreground and
// waits until url answers.
func runNginx(ctx context.Context, prefix, conf, url string) (func(), error) {
	if err := os.MkdirAll(filepath.Join(prefix, "logs"), 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "nginx", "-p", prefix, "-c", path)
	// On an interrupt the master stops its workers; killed, it would leave
	// them running.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }
	if err := benchutil.WaitUp(ctx, url); err != nil {
		stop()
		return nil, fmt.Errorf("nginx: %w", err)
	}
	return stop, nil
}

// startBerth runs a control plane in this process and configures a load
// balancer in front of the backends through the ELBv2 API.
func startBerth(ctx context.Context, dir string, backends []string) (string, func(), error) {
	cp, err := controlplane.Open(controlplane.Config{Listen: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		return "", nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cp.Serve(sctx) }()
	stop := func() { cancel(); <-done }
	fail := func(err error) (string, func(), error) { stop(); return "", nil, err }
	if err := benchutil.WaitUp(ctx, cp.Endpoint()+"/_berth/health"); err != nil {
		return fail(err)
	}
	key := cp.Key()
	c := elb.NewFromConfig(aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(key.AccessKeyID, key.SecretAccessKey, ""),
		BaseEndpoint: aws.String(cp.Endpoint()),
		HTTPClient:   sdkhttp.Client(),
	})
	lb, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("bench"), Subnets: []string{"subnet-a", "subnet-b"}})
	if err != nil {
		return fail(err)
	}
	tg, err := c.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{
		Name: aws.String("bench"), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80), TargetType: elbtypes.TargetTypeEnumIp,
		VpcId: aws.String("vpc-berth"), HealthCheckPath: aws.String("/health"), HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(2), HealthyThresholdCount: aws.Int32(2),
	})
	if err != nil {
		return fail(err)
	}
	tgArn := tg.TargetGroups[0].TargetGroupArn
	var targets []elbtypes.TargetDescription
	for _, b := range backends {
		host, port, _ := net.SplitHostPort(b)
		p, _ := strconv.Atoi(port)
		targets = append(targets, elbtypes.TargetDescription{Id: aws.String(host), Port: aws.Int32(int32(p))})
	}
	if _, err := c.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: tgArn, Targets: targets}); err != nil {
		return fail(err)
	}
	port, err := benchutil.FreePort()
	if err != nil {
		return fail(err)
	}
	if _, err := c.CreateListener(ctx, &elb.CreateListenerInput{
		LoadBalancerArn: lb.LoadBalancers[0].LoadBalancerArn, Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(int32(port)),
		DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: tgArn}},
	}); err != nil {
		return fail(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		h, err := c.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: tgArn})
		if err != nil {
			return fail(err)
		}
		healthy := 0
		for _, d := range h.TargetHealthDescriptions {
			if d.TargetHealth != nil && d.TargetHealth.State == elbtypes.TargetHealthStateEnumHealthy {
				healthy++
			}
		}
		if healthy == len(backends) {
			break
		}
		if time.Now().After(deadline) {
			return fail(errors.New("Berth's targets did not become healthy within a minute"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The listener binds on the load balancer's own loopback address; its
	// DNS name resolves there only where Berth manages the hosts file, so
	// the benchmark dials the address.
	addr, err := lbAddress(ctx, c, aws.ToString(lb.LoadBalancers[0].DNSName))
	if err != nil {
		return fail(err)
	}
	return fmt.Sprintf("http://%s:%d", addr, port), stop, nil
}

// lbAddress resolves the load balancer's DNS name, falling back to Berth's
// hosts file entries when the system resolver does not know it.
func lbAddress(ctx context.Context, _ *elb.Client, dnsName string) (string, error) {
	if addrs, err := net.DefaultResolver.LookupHost(ctx, dnsName); err == nil && len(addrs) > 0 {
		return addrs[0], nil
	}
	f, err := os.Open("/etc/hosts")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && slices.Contains(fields[1:], dnsName) {
			return fields[0], nil
		}
	}
	return "", fmt.Errorf("%s does not resolve", dnsName)
}

// runWrk runs wrk and parses its throughput and latency percentiles.
func runWrk(ctx context.Context, url string, conns int, d time.Duration) (result, error) {
	threads := 2
	if conns < threads {
		threads = conns
	}
	out, err := exec.CommandContext(ctx, "wrk", "-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns),
		"-d", fmt.Sprintf("%ds", int(d.Seconds())), "--latency", url).CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	var r result
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "Requests/sec:":
			r.rps, _ = strconv.ParseFloat(f[1], 64)
		case len(f) == 2 && f[0] == "50%":
			r.p50, _ = time.ParseDuration(f[1])
		case len(f) == 2 && f[0] == "99%":
			r.p99, _ = time.ParseDuration(f[1])
		case strings.Contains(line, "Non-2xx or 3xx responses"):
			return result{}, fmt.Errorf("wrk saw errors:\n%s", out)
		}
	}
	if r.rps == 0 {
		return result{}, fmt.Errorf("could not parse wrk's output:\n%s", out)
	}
	return r, nil
}

func median(rs []result) result {
	by := func(f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return result{
		rps: by(func(r result) float64 { return r.rps }),
		p50: time.Duration(by(func(r result) float64 { return float64(r.p50) })),
		p99: time.Duration(by(func(r result) float64 { return float64(r.p99) })),
	}
}
