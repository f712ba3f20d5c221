package main_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// app is the test application, built once for these tests.
var app string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "testapp-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	app = filepath.Join(dir, "app")
	build := exec.Command("go", "build", "-o", app, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run runs the application to completion and returns its exit code and
// output.
func run(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(app, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

func TestCommands(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"path":%q}`, r.URL.Path)
	}))
	defer ok.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusServiceUnavailable)
	}))
	defer failing.Close()
	file := filepath.Join(t.TempDir(), "f")

	tests := []struct {
		name     string
		env      []string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"exit", nil, []string{"exit", "3"}, 3, "exit 3"},
		{"exit after", nil, []string{"exit", "-after", "10ms", "4"}, 4, "exit 4"},
		{"exit bad code", nil, []string{"exit", "x"}, 2, "invalid syntax"},
		{"sleep with a duration", nil, []string{"sleep", "10ms"}, 0, "sleeping"},
		{"check ok", nil, []string{"check", ok.URL}, 0, "check: ok"},
		{"check failing", nil, []string{"check", failing.URL}, 1, "503"},
		{"check unreachable", nil, []string{"check", "http://127.0.0.1:1/"}, 1, "refused"},
		{"metadata", []string{"ECS_CONTAINER_METADATA_URI_V4=" + ok.URL + "/v4/abc"}, []string{"metadata"}, 0,
			`{"path":"/v4/abc"}` + "\n" + `{"path":"/v4/abc/task"}`},
		{"metadata unset", []string{"ECS_CONTAINER_METADATA_URI_V4="}, []string{"metadata"}, 2, "not set"},
		{"env", []string{"APP_X=1"}, []string{"env"}, 0, "APP_X=1\n"},
		{"write", nil, []string{"write", file, "hello"}, 0, "wrote"},
		{"unknown", nil, []string{"nope"}, 2, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := run(t, tt.env, tt.args...)
			if code != tt.wantCode || !strings.Contains(out, tt.wantOut) {
				t.Errorf("%v: exit %d, output %q; want %d and %q", tt.args, code, out, tt.wantCode, tt.wantOut)
			}
		})
	}
	if code, out := run(t, nil, "cat", file); code != 0 || out != "hello" {
		t.Errorf("cat: exit %d, output %q", code, out)
	}
}

// started is a running application and its output lines.
type started struct {
	cmd   *exec.Cmd
	lines *bufio.Scanner
}

// start starts the application and waits for its first output line.
func start(t *testing.T, args ...string) (*started, string) {
	t.Helper()
	cmd := exec.Command(app, args...)
	cmd.Env = append(os.Environ(), "APP_COLOUR=blue")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	s := &started{cmd: cmd, lines: bufio.NewScanner(stdout)}
	if !s.lines.Scan() {
		t.Fatalf("no output: %v", s.lines.Err())
	}
	return s, s.lines.Text()
}

// wait waits for the application to exit and returns its code and the rest
// of its output.
func (s *started) wait(t *testing.T) (int, string) {
	t.Helper()
	var rest strings.Builder
	for s.lines.Scan() {
		rest.WriteString(s.lines.Text() + "\n")
	}
	err := s.cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), rest.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, rest.String()
}

func TestServe(t *testing.T) {
	s, first := start(t, "serve", "-port", "0", "-name", "web", "-env", "HOME")
	// "listening on [::]:PORT name=web"
	addr := strings.Fields(first)[2]
	base := "http://127.0.0.1:" + addr[strings.LastIndex(addr, ":")+1:]

	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	_, body := get("/")
	var root struct {
		Name, Hostname string
		Env            map[string]string
	}
	if err := json.Unmarshal([]byte(body), &root); err != nil {
		t.Fatalf("GET /: %v in %q", err, body)
	}
	if root.Name != "web" || root.Hostname == "" || root.Env["APP_COLOUR"] != "blue" || root.Env["HOME"] == "" || root.Env["PATH"] != "" {
		t.Errorf("GET / = %s", body)
	}
	if code, body := get("/health"); code != 200 || body != "ok\n" {
		t.Errorf("GET /health = %d %q", code, body)
	}
	if code, body := get("/env?k=APP_COLOUR"); code != 200 || body != "blue" {
		t.Errorf("GET /env = %d %q", code, body)
	}
	if code, _ := get("/env?k=UNSET_VARIABLE"); code != 404 {
		t.Errorf("GET /env of an unset variable = %d", code)
	}
	if code, _ := get("/alloc?mib=2"); code != 200 {
		t.Errorf("GET /alloc = %d", code)
	}
	if code, body := get("/exit?code=4"); code != 200 || body != "exiting 4\n" {
		t.Errorf("GET /exit = %d %q", code, body)
	}
	if code, _ := s.wait(t); code != 4 {
		t.Errorf("exit code after /exit: %d, want 4", code)
	}
}

func TestSignals(t *testing.T) {
	for _, args := range [][]string{{"serve", "-port", "0"}, {"sleep"}, {"exit", "5", "-after", "1h"}} {
		t.Run(args[0], func(t *testing.T) {
			s, _ := start(t, args...)
			s.cmd.Process.Signal(syscall.SIGTERM)
			code, out := s.wait(t)
			if code != 0 || !strings.Contains(out, "stopping") {
				t.Errorf("after SIGTERM: exit %d, output %q; want 0 and stopping", code, out)
			}
		})
	}

	t.Run("ignore-term", func(t *testing.T) {
		s, first := start(t, "ignore-term")
		if first != "ignoring SIGTERM" {
			t.Fatalf("first line %q", first)
		}
		s.cmd.Process.Signal(syscall.SIGTERM)
		if !s.lines.Scan() || s.lines.Text() != "ignored terminated" {
			t.Fatalf("after SIGTERM: %q, %v", s.lines.Text(), s.lines.Err())
		}
		s.cmd.Process.Kill()
		if err := s.cmd.Wait(); err == nil {
			t.Error("killed process exited 0")
		}
	})
}
