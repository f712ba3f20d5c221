// Command testapp is the one program inside Berth's test image: a multi-tool
// selected by its first argument, so that an ECS command line can make a
// container serve HTTP, exit with a code, ignore SIGTERM, act as a health
// check, read the task metadata endpoint or share files through a volume.
// It uses the standard library only and is built static (CGO_ENABLED=0).
//
// Usage:
//
//	serve [-port N] [-name S] [-env A,B]  HTTP server on port N (8080), see below
//	exit CODE [-after DURATION]          exit with CODE, optionally after a delay
//	sleep [DURATION]                     sleep forever (or DURATION); exit 0 on SIGTERM
//	check URL                            exit 0 if GET URL answers 2xx within 2s, else 1
//	ignore-term                          ignore SIGTERM and block (only SIGKILL ends it)
//	metadata                             print $ECS_CONTAINER_METADATA_URI_V4 and its /task
//	env                                  print the environment, one variable per line
//	write PATH TEXT                      write TEXT to PATH
//	cat PATH...                          print the files at PATH...
//	ip                                   print the non-loopback addresses, one per line
//
// serve answers:
//
//	GET /              {"name", "hostname", "env": {APP_* and -env variables}, "addrs": [...]}
//	GET /health        200 "ok" (500 after GET /sick)
//	GET /sick          makes /health answer 500 from then on
//	GET /env?k=NAME    the variable's value (404 if unset)
//	GET /exit?code=N   answers, then exits with N
//	GET /alloc?mib=N   allocates and keeps N MiB (to trigger the OOM killer)
//
// serve, sleep and exit -after end with status 0 on SIGTERM or SIGINT,
// printing "stopping". Every command catches those signals from its start
// (see term), so none dies of them.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: app serve|exit|sleep|check|ignore-term|metadata|env|write|cat|ip ...")
		os.Exit(2)
	}
	signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "serve":
		err = serve(args)
	case "exit":
		err = exitCmd(args)
	case "sleep":
		err = sleep(args)
	case "check":
		os.Exit(check(args))
	case "ignore-term":
		ignoreTerm()
	case "metadata":
		err = metadata()
	case "env":
		for _, kv := range os.Environ() {
			fmt.Println(kv)
		}
	case "write":
		err = write(args)
	case "cat":
		err = cat(args)
	case "ip":
		err = printIPs()
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "app:", err)
		os.Exit(2)
	}
}

// parse parses flags interspersed with positional arguments, which the
// flag package alone stops at, and returns the positional ones.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// term receives SIGTERM and SIGINT. Signals are caught from the first
// moment main runs: as PID 1 in a container, a Go program that has not
// called signal.Notify yet does not die of SIGTERM (the kernel ignores it
// for PID 1) but exits with status 2 instead, which a test stopping a
// container early would misread.
var term = make(chan os.Signal, 1)

// terminated returns the channel that receives SIGTERM and SIGINT.
func terminated() <-chan os.Signal {
	return term
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	port := fs.Int("port", 8080, "TCP port to listen on")
	name := fs.String("name", "", "name to report in GET /")
	envList := fs.String("env", "", "comma-separated variables to report in GET / besides APP_*")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	hostname, _ := os.Hostname()
	if *name == "" {
		*name = hostname
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		env := map[string]string{}
		wanted := map[string]bool{}
		for n := range strings.SplitSeq(*envList, ",") {
			if n != "" {
				wanted[n] = true
			}
		}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			if wanted[k] || strings.HasPrefix(k, "APP_") {
				env[k] = v
			}
		}
		addrs, _ := ips()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"name":     *name,
			"hostname": hostname,
			"env":      env,
			"addrs":    addrs,
		})
	})
	var sick atomic.Bool
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		if sick.Load() {
			http.Error(w, "sick", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /sick", func(w http.ResponseWriter, r *http.Request) {
		sick.Store(true)
		fmt.Fprintln(w, "from now on /health answers 500")
	})
	mux.HandleFunc("GET /env", func(w http.ResponseWriter, r *http.Request) {
		v, ok := os.LookupEnv(r.URL.Query().Get("k"))
		if !ok {
			http.Error(w, "unset", http.StatusNotFound)
			return
		}
		fmt.Fprint(w, v)
	})
	mux.HandleFunc("GET /exit", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.URL.Query().Get("code"))
		if err != nil {
			http.Error(w, "code: "+err.Error(), http.StatusBadRequest)
			return
		}
		// A complete answer (with its length, so not chunked) is flushed
		// before the process is gone, so that the caller sees it.
		msg := fmt.Sprintf("exiting %d\n", code)
		w.Header().Set("Content-Length", strconv.Itoa(len(msg)))
		io.WriteString(w, msg)
		http.NewResponseController(w).Flush()
		fmt.Printf("exit %d requested\n", code)
		os.Exit(code)
	})

	mux.HandleFunc("GET /alloc", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("mib"))
		if err != nil {
			http.Error(w, "mib: "+err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Printf("allocating %d MiB\n", n)
		alloc(n)
		fmt.Fprintf(w, "allocated %d MiB\n", n)
	})

	ln, err := net.Listen("tcp", ":"+strconv.Itoa(*port))
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Printf("listening on %s name=%s\n", ln.Addr(), *name)

	select {
	case err := <-errc:
		return err
	case <-terminated():
		fmt.Println("stopping")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		return nil
	}
}

func exitCmd(args []string) error {
	fs := flag.NewFlagSet("exit", flag.ContinueOnError)
	after := fs.Duration("after", 0, "delay before exiting")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: exit CODE [-after DURATION]")
	}
	code, err := strconv.Atoi(pos[0])
	if err != nil {
		return err
	}
	if *after > 0 {
		fmt.Printf("exit %d after %v\n", code, *after)
		select {
		case <-time.After(*after):
		case <-terminated():
			fmt.Println("stopping")
			os.Exit(0)
		}
	}
	fmt.Printf("exit %d\n", code)
	os.Exit(code)
	return nil
}

func sleep(args []string) error {
	var timeout <-chan time.Time
	if len(args) > 0 {
		d, err := time.ParseDuration(args[0])
		if err != nil {
			return err
		}
		timeout = time.After(d)
	}
	term := terminated()
	fmt.Println("sleeping")
	select {
	case <-timeout:
	case <-term:
		fmt.Println("stopping")
	}
	return nil
}

func check(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: check URL")
		return 2
	}
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(args[0])
	if err != nil {
		fmt.Println("check:", err)
		return 1
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		fmt.Println("check:", resp.Status)
		return 1
	}
	fmt.Println("check: ok")
	return 0
}

func ignoreTerm() {
	// Reading the signals (rather than ignoring them) keeps them from
	// ending the process and shows in the logs that they arrived.
	fmt.Println("ignoring SIGTERM")
	for sig := range term {
		fmt.Println("ignored", sig)
	}
}

func metadata() error {
	base := os.Getenv("ECS_CONTAINER_METADATA_URI_V4")
	if base == "" {
		fmt.Fprintln(os.Stderr, "ECS_CONTAINER_METADATA_URI_V4 is not set")
		os.Exit(2)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	for _, u := range []string{base, base + "/task"} {
		resp, err := c.Get(u)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", u, resp.Status)
		}
		os.Stdout.Write(body)
		fmt.Println()
	}
	return nil
}

func write(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: write PATH TEXT")
	}
	if err := os.WriteFile(args[0], []byte(args[1]), 0o644); err != nil {
		return err
	}
	fmt.Printf("wrote %s\n", args[0])
	return nil
}

func cat(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: cat PATH...")
	}
	for _, p := range args {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if _, err := os.Stdout.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// ips lists the machine's non-loopback IP addresses, sorted.
func ips() ([]string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			out = append(out, n.IP.String())
		}
	}
	sort.Strings(out)
	return out, nil
}

func printIPs() error {
	addrs, err := ips()
	if err != nil {
		return err
	}
	for _, a := range addrs {
		fmt.Println(a)
	}
	return nil
}

// allocated holds what GET /alloc allocated, so that it stays charged.
var allocated [][]byte

// alloc allocates and touches n mebibytes, keeping them.
func alloc(n int) {
	for i := range n {
		b := make([]byte, 1<<20)
		// Touch every page so the memory is really charged to the cgroup.
		for j := 0; j < len(b); j += 4096 {
			b[j] = byte(i)
		}
		allocated = append(allocated, b)
	}
}
