// Command berth runs Berth, a self-hosted container orchestrator that speaks
// the Amazon ECS API. See `berth help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/berthdev/berth/internal/agent"
	"github.com/berthdev/berth/internal/controlplane"
	"github.com/berthdev/berth/internal/lb"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

const usage = `berth runs Amazon ECS on your own machines: the AWS CLI, the AWS SDKs and
every tool that honours AWS_ENDPOINT_URL work against it unmodified.

Usage:
  berth <command> [flags]

Commands:
  up        Run everything on this machine: the control plane with its
            embedded store, the container registry (ECR, at /v2/ on the
            endpoint), the load balancers (ELBv2) and a local agent that runs
            tasks on this host's Docker Engine, ready for the AWS CLI and
            docker push. Prints the endpoint and how to point the AWS CLI
            and docker at it.
  server    Run the control plane only, for a multi-host installation. Logs
            in JSON by default.
  agent     Run tasks on this host's Docker Engine for a control plane
            (berth agent --server URL --join-token-file FILE).
  version   Print the version.
  help      Print this help, or 'berth help <command>' for a command's flags.

Environment:
  BERTH_DATA_DIR            data directory (default: $XDG_DATA_HOME/berth or ~/.local/share/berth)
  BERTH_ACCESS_KEY_ID       admin access key id to use instead of the generated one
  BERTH_SECRET_ACCESS_KEY   its secret (both must be set together)
  GOMAXPROCS                Go threads running at once for berth up and berth server
                            (default: 3 × the CPUs, at most CPUs + 16: the load balancers
                            share the cores with the tasks they proxy to; under a cgroup
                            CPU quota, the Go runtime's default)
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "up":
		return serve(cmd, rest, stdout, stderr)
	case "server":
		return serve(cmd, rest, stdout, stderr)
	case "agent":
		return runAgent(rest, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "berth %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 && rest[0] == "agent" {
			fs, _ := newAgentFlags(stderr)
			fs.SetOutput(stdout)
			fs.Usage()
			return 0
		}
		if len(rest) > 0 && (rest[0] == "up" || rest[0] == "server") {
			fs, _ := newServeFlags(rest[0], stderr)
			fs.SetOutput(stdout)
			fs.Usage()
			return 0
		}
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "berth: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}

type serveFlags struct {
	listen, dataDir, region, account, logLevel, logFormat string
	registryHost, hostsFile                               string
	insecure, noAgent                                     bool
}

func defaultDataDir() string {
	if d := os.Getenv("BERTH_DATA_DIR"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "berth")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "berth")
	}
	return "berth-data"
}

func newServeFlags(cmd string, stderr io.Writer) (*flag.FlagSet, *serveFlags) {
	f := &serveFlags{}
	fs := flag.NewFlagSet("berth "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	defFormat := "text"
	if cmd == "server" {
		defFormat = "json"
	}
	fs.StringVar(&f.listen, "listen", controlplane.DefaultListen, "address of the AWS API endpoint (host:port)")
	fs.StringVar(&f.dataDir, "data-dir", defaultDataDir(), "directory for the store, credentials, images and logs")
	fs.StringVar(&f.region, "region", controlplane.DefaultRegion, "the AWS region Berth serves; clients must sign for it")
	fs.StringVar(&f.account, "account-id", controlplane.DefaultAccount, "the 12-digit AWS account id in ARNs")
	fs.StringVar(&f.registryHost, "registry-host", "", "host[:port] that image references and repositoryUri use for the registry (default: the listen address, 127.0.0.1 for 0.0.0.0); agents on other hosts must reach it, and Docker pushes over plain HTTP only to 127.0.0.0/8 unless the host is in its insecure-registries")
	fs.StringVar(&f.hostsFile, "hosts-file", "", "hosts file in which the load balancers' DNS names are kept (default: /etc/hosts when writable; - for none)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", defFormat, "log format: text or json")
	fs.BoolVar(&f.insecure, "insecure-skip-auth", false, "DEVELOPMENT ONLY: accept unsigned requests as the admin")
	if cmd == "up" {
		fs.BoolVar(&f.noAgent, "no-agent", false, "do not start the local agent (the control plane only, like berth server)")
	}
	fs.Usage = func() {
		what := "Run everything on this machine."
		if cmd == "server" {
			what = "Run the control plane."
		}
		fmt.Fprintf(fs.Output(), "Usage: berth %s [flags]\n\n%s\n\nFlags:\n", cmd, what)
		fs.PrintDefaults()
	}
	return fs, f
}

func newLogger(level, format string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", format)
}

func serve(cmd string, args []string, stdout, stderr io.Writer) int {
	start := time.Now()
	fs, f := newServeFlags(cmd, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "berth %s: unexpected argument %q\n", cmd, fs.Arg(0))
		return 2
	}
	log, err := newLogger(f.logLevel, f.logFormat, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "berth %s: %v\n", cmd, err)
		return 2
	}
	procs, why := lb.SetProcs()
	log.Debug("go runtime", "gomaxprocs", procs, "why", why, "cpus", runtime.NumCPU())
	cp, err := controlplane.Open(controlplane.Config{
		Listen:       f.listen,
		DataDir:      f.dataDir,
		Region:       f.region,
		Account:      f.account,
		AdminKey:     controlplane.AdminKey{AccessKeyID: os.Getenv("BERTH_ACCESS_KEY_ID"), SecretAccessKey: os.Getenv("BERTH_SECRET_ACCESS_KEY")},
		Insecure:     f.insecure,
		RegistryHost: f.registryHost,
		HostsFile:    f.hostsFile,
		Logger:       log,
	})
	if err != nil {
		fmt.Fprintf(stderr, "berth %s: %v\n", cmd, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var local *agent.Agent
	agentNote := "not started (--no-agent)"
	if cmd == "up" && !f.noAgent {
		a, closeRT, err := newAgent(agent.Config{
			Cluster: "default", Endpoint: cp.Endpoint(), Token: cp.JoinToken(),
			StateDir: filepath.Join(f.dataDir, "agent"), MetadataListen: agent.DefaultMetadataListen,
		}, log)
		if err != nil {
			agentNote = "NOT RUNNING: " + err.Error() + " - tasks cannot run on this machine"
		} else {
			defer closeRT()
			local, agentNote = a, "running tasks on this host's Docker Engine (cluster \"default\")"
		}
	}
	if cmd == "up" {
		printBanner(stdout, cp, time.Since(start), agentNote)
	} else {
		log.Info("control plane ready", "endpoint", cp.Endpoint(), "credentials_file", cp.CredentialsFile,
			"join_token_file", filepath.Join(f.dataDir, "join-token"), "startup", time.Since(start).Round(time.Millisecond).String())
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return cp.Serve(gctx) })
	if local != nil {
		g.Go(func() error {
			if err := local.Run(gctx); err != nil && gctx.Err() == nil {
				return fmt.Errorf("local agent: %w", err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		fmt.Fprintf(stderr, "berth %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

func printBanner(w io.Writer, cp *controlplane.ControlPlane, took time.Duration, agentNote string) {
	var b strings.Builder
	fmt.Fprintf(&b, "Berth %s is up (started in %s).\n\n", version, took.Round(time.Millisecond))
	fmt.Fprintf(&b, "  Endpoint:     %s\n", cp.Endpoint())
	fmt.Fprintf(&b, "  Region:       %s\n", cp.Region())
	fmt.Fprintf(&b, "  Account:      %s\n", cp.Account())
	fmt.Fprintf(&b, "  Registry:     %s (ECR: aws ecr create-repository, then docker push %s/<repository>:<tag>)\n", cp.RegistryHost(), cp.RegistryHost())
	fmt.Fprintf(&b, "  Data:         %s\n", cp.DataDir())
	fmt.Fprintf(&b, "  Credentials:  %s (profile %q)", cp.CredentialsFile, controlplane.ProfileName)
	if cp.KeyCreated {
		b.WriteString(" - new admin key created")
	}
	fmt.Fprintf(&b, "\n  Local agent:  %s", agentNote)
	fmt.Fprintf(&b, "\n  More hosts:   copy %s to the host, then: berth agent --server %s --join-token-file join-token", filepath.Join(cp.DataDir(), "join-token"), cp.Endpoint())
	fmt.Fprintf(&b, "\n\nPoint the AWS CLI at it:\n\n")
	fmt.Fprintf(&b, "  source %s\n", cp.EnvFile)
	fmt.Fprintf(&b, "  aws ecs create-cluster --endpoint-url %s\n", cp.Endpoint())
	fmt.Fprintf(&b, "  aws ecs list-clusters --endpoint-url %s\n", cp.Endpoint())
	fmt.Fprintf(&b, "  aws ecr get-login-password --endpoint-url %s | docker login --username AWS --password-stdin %s\n\n", cp.Endpoint(), cp.RegistryHost())
	fmt.Fprintf(&b, "The AWS SDKs and AWS CLI 2.13+ read AWS_ENDPOINT_URL from that file, so --endpoint-url\n")
	fmt.Fprintf(&b, "can be left out there. Press Ctrl-C to stop.\n")
	fmt.Fprint(w, b.String())
}
