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
	"strings"
	"syscall"

	"github.com/berthdev/berth/internal/agent"
	"github.com/berthdev/berth/internal/runtime/docker"
)

// attrFlags collects repeated --attribute name=value flags.
type attrFlags map[string]string

func (a attrFlags) String() string { return "" }

func (a attrFlags) Set(v string) error {
	name, val, _ := strings.Cut(v, "=")
	if name == "" {
		return errors.New("want name=value (or name)")
	}
	a[name] = val
	return nil
}

type agentFlags struct {
	server, token, tokenFile, cluster, stateDir, metadataListen, logLevel, logFormat, registryAuth string
	hostAddress                                                                                    string
	attrs                                                                                          attrFlags
	reservedMemory                                                                                 int
}

func newAgentFlags(stderr io.Writer) (*flag.FlagSet, *agentFlags) {
	f := &agentFlags{attrs: attrFlags{}}
	fs := flag.NewFlagSet("berth agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.server, "server", os.Getenv("BERTH_SERVER"), "control plane endpoint, e.g. http://10.0.0.1:4566 (also BERTH_SERVER)")
	fs.StringVar(&f.token, "join-token", "", "the join token (prefer --join-token-file or BERTH_JOIN_TOKEN: a command line is visible to every user of the host)")
	fs.StringVar(&f.tokenFile, "join-token-file", "", "file holding the join token, e.g. a copy of the control plane's <data-dir>/join-token")
	fs.StringVar(&f.cluster, "cluster", "default", "cluster to join; the default cluster is created if missing")
	fs.StringVar(&f.stateDir, "state-dir", filepath.Join(defaultDataDir(), "agent"), "directory for the agent's identity and task state")
	fs.StringVar(&f.metadataListen, "metadata-listen", agent.DefaultMetadataListen, "address of the task metadata endpoint (v4) containers call")
	fs.IntVar(&f.reservedMemory, "reserved-memory", 0, "MiB of host memory not offered to tasks")
	fs.StringVar(&f.hostAddress, "host-address", os.Getenv("BERTH_HOST_ADDRESS"), "address other hosts reach this one at; load balancers send instance targets' traffic there (default: this host's address on the route to the control plane)")
	fs.StringVar(&f.registryAuth, "registry-auth-file", os.Getenv("BERTH_REGISTRY_AUTH_FILE"), "Docker config.json with credentials for private registries (like ECS_ENGINE_AUTH_TYPE=dockercfg); Berth's own registry needs none, the agent gets its credentials from the control plane")
	fs.Var(f.attrs, "attribute", "custom instance attribute name=value (repeatable)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "json", "log format: text or json")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: berth agent --server URL --join-token-file FILE [flags]\n\nRun tasks on this host's Docker Engine for a Berth control plane.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	return fs, f
}

func runAgent(args []string, stderr io.Writer) int {
	fs, f := newAgentFlags(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if f.token == "" && f.tokenFile != "" {
		buf, err := os.ReadFile(f.tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "berth agent: reading the join token: %v\n", err)
			return 2
		}
		f.token = strings.TrimSpace(string(buf))
	}
	if f.token == "" {
		f.token = os.Getenv("BERTH_JOIN_TOKEN")
	}
	if f.server == "" || f.token == "" {
		fmt.Fprintln(stderr, "berth agent: --server and a join token (--join-token-file, or BERTH_SERVER and BERTH_JOIN_TOKEN) are required")
		return 2
	}
	log, err := newLogger(f.logLevel, f.logFormat, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "berth agent: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := agent.Config{
		Cluster: f.cluster, Endpoint: f.server, Token: f.token, StateDir: f.stateDir, HostAddress: f.hostAddress,
		MetadataListen: f.metadataListen, ReservedMemoryMiB: f.reservedMemory, Attributes: f.attrs,
	}
	if f.registryAuth != "" {
		auth, err := agent.LoadDockerConfig(f.registryAuth)
		if err != nil {
			fmt.Fprintf(stderr, "berth agent: --registry-auth-file: %v\n", err)
			return 2
		}
		cfg.RegistryAuth = auth
	}
	a, closeRT, err := newAgent(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "berth agent: %v\n", err)
		return 1
	}
	defer closeRT()
	if err := a.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "berth agent: %v\n", err)
		return 1
	}
	return 0
}

// newAgent builds an agent over the local Docker Engine.
func newAgent(cfg agent.Config, log *slog.Logger) (*agent.Agent, func(), error) {
	rt, err := docker.New(docker.Options{Logger: log})
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to the Docker Engine: %w", err)
	}
	if _, err := rt.Info(context.Background()); err != nil {
		rt.Close()
		return nil, nil, fmt.Errorf("the Docker Engine is not reachable (is the daemon running, and DOCKER_HOST right?): %w", err)
	}
	cfg.Runtime = rt
	cfg.Logger = log
	a, err := agent.New(cfg)
	if err != nil {
		rt.Close()
		return nil, nil, err
	}
	return a, func() { rt.Close() }, nil
}
