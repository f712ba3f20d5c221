package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// awsCLI finds the AWS CLI to test with: $BERTH_TEST_AWS_CLI, Debian's
// /usr/bin/aws, or an AWS CLI v2 on PATH. Without one the test is skipped, except in
// CI, where .ci/run installs it and its absence is a failure.
func awsCLI(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("BERTH_TEST_AWS_CLI"), "/usr/bin/aws"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	// The tests use AWS CLI v2 options (--no-cli-pager); a v1 on PATH does not do.
	if p, err := exec.LookPath("aws"); err == nil {
		if out, err := exec.Command(p, "--version").CombinedOutput(); err == nil && strings.HasPrefix(string(out), "aws-cli/2") {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("the AWS CLI is not installed (apt-get install awscli); CI must have it")
	}
	t.Skip("the AWS CLI is not installed: apt-get install awscli, or set BERTH_TEST_AWS_CLI")
	return ""
}

// cli runs the AWS CLI against b with the credentials profile Berth wrote.
type cli struct {
	t    *testing.T
	bin  string
	b    *berth
	home string
}

func newCLI(t *testing.T, b *berth) *cli {
	return &cli{t: t, bin: awsCLI(t), b: b, home: t.TempDir()}
}

// run runs `aws ecs <args> --endpoint-url ...` and returns stdout, stderr
// and the exit code.
func (c *cli) run(args ...string) (map[string]any, string, int) {
	c.t.Helper()
	args = append(args, "--endpoint-url", c.b.endpoint, "--output", "json", "--no-cli-pager")
	cmd := exec.Command(c.bin, args...)
	cmd.Env = []string{
		"HOME=" + c.home,
		"PATH=" + os.Getenv("PATH"),
		"AWS_SHARED_CREDENTIALS_FILE=" + c.b.cp.CredentialsFile,
		"AWS_CONFIG_FILE=" + filepath.Join(c.home, "config"),
		"AWS_PROFILE=berth",
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_MAX_ATTEMPTS=1",
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("running aws: %v", err)
	}
	var out map[string]any
	if code == 0 && stdout.Len() > 0 {
		if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
			c.t.Fatalf("aws %s: output is not JSON: %q", strings.Join(args, " "), stdout.String())
		}
	}
	return out, stderr.String(), code
}

// ok runs a command that must succeed.
func (c *cli) ok(args ...string) map[string]any {
	c.t.Helper()
	out, stderr, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("aws %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	return out
}

// fails runs a command that must fail with the given AWS error code.
func (c *cli) fails(code string, args ...string) string {
	c.t.Helper()
	_, stderr, exit := c.run(args...)
	if exit == 0 || !strings.Contains(stderr, "("+code+")") {
		c.t.Fatalf("aws %s: want error %s, got exit %d: %s", strings.Join(args, " "), code, exit, stderr)
	}
	return stderr
}

// path walks decoded JSON: path(v, "cluster", "status").
func path(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func TestAWSCLI(t *testing.T) {
	b := startBerth(t)
	c := newCLI(t, b)

	out := c.ok("ecs", "create-cluster", "--cluster-name", "cli", "--tags", "key=team,value=core", "--settings", "name=containerInsights,value=enabled")
	if path(out, "cluster", "status") != "ACTIVE" || path(out, "cluster", "tags", 0, "value") != "core" {
		t.Fatalf("create-cluster: %v", out)
	}
	out = c.ok("ecs", "describe-clusters", "--clusters", "cli", "ghost", "--include", "TAGS", "SETTINGS", "STATISTICS")
	if path(out, "clusters", 0, "settings", 0, "value") != "enabled" || path(out, "failures", 0, "reason") != "MISSING" ||
		path(out, "failures", 0, "arn") != "arn:aws:ecs:us-east-1:000000000000:cluster/ghost" || path(out, "clusters", 0, "statistics") == nil {
		t.Fatalf("describe-clusters: %v", out)
	}
	c.ok("ecs", "update-cluster-settings", "--cluster", "cli", "--settings", "name=containerInsights,value=disabled")
	out = c.ok("ecs", "update-cluster", "--cluster", "cli", "--configuration", `{"executeCommandConfiguration":{"logging":"NONE"}}`)
	if path(out, "cluster", "configuration", "executeCommandConfiguration", "logging") != "NONE" {
		t.Fatalf("update-cluster: %v", out)
	}
	for _, n := range []string{"cli-2", "cli-3"} {
		c.ok("ecs", "create-cluster", "--cluster-name", n)
	}
	// The CLI follows nextToken itself; a page size of 1 makes it page.
	out = c.ok("ecs", "list-clusters", "--page-size", "1")
	if arns, _ := out["clusterArns"].([]any); len(arns) != 3 {
		t.Fatalf("list-clusters paged: %v", out)
	}

	tdFile := filepath.Join(t.TempDir(), "td.json")
	writeFile(t, tdFile, `{
	  "family": "cli-web",
	  "networkMode": "bridge",
	  "tags": [{"key": "app", "value": "web"}],
	  "containerDefinitions": [{
	    "name": "web", "image": "nginx:1.27", "memory": 128, "essential": true,
	    "portMappings": [{"containerPort": 80, "hostPort": 0}],
	    "environment": [{"name": "A", "value": "1"}],
	    "healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 10}
	  }]
	}`)
	for i := 0; i < 3; i++ {
		out = c.ok("ecs", "register-task-definition", "--cli-input-json", "file://"+tdFile)
	}
	if path(out, "taskDefinition", "revision") != 3.0 || path(out, "taskDefinition", "containerDefinitions", 0, "healthCheck", "retries") != 3.0 {
		t.Fatalf("register-task-definition: %v", out)
	}
	out = c.ok("ecs", "describe-task-definition", "--task-definition", "cli-web:2", "--include", "TAGS")
	if path(out, "taskDefinition", "revision") != 2.0 || path(out, "tags", 0, "value") != "web" {
		t.Fatalf("describe-task-definition: %v", out)
	}
	if stderr := c.fails("ClientException", "ecs", "describe-task-definition", "--task-definition", "nope"); !strings.Contains(stderr, "Unable to describe task definition.") {
		t.Fatalf("describe unknown task definition: %s", stderr)
	}
	c.ok("ecs", "deregister-task-definition", "--task-definition", "cli-web:1")
	out = c.ok("ecs", "list-task-definitions", "--family-prefix", "cli-web", "--sort", "DESC", "--page-size", "1")
	if arns, _ := out["taskDefinitionArns"].([]any); len(arns) != 2 || !strings.HasSuffix(arns[0].(string), "cli-web:3") {
		t.Fatalf("list-task-definitions: %v", out)
	}
	out = c.ok("ecs", "list-task-definition-families", "--status", "ACTIVE")
	if path(out, "families", 0) != "cli-web" {
		t.Fatalf("list-task-definition-families: %v", out)
	}
	// Debian's AWS CLI 2.9 predates delete-task-definitions (2023); the SDK
	// tests cover it.

	clusterARN := "arn:aws:ecs:us-east-1:000000000000:cluster/cli"
	c.ok("ecs", "tag-resource", "--resource-arn", clusterARN, "--tags", "key=cost,value=42")
	c.ok("ecs", "untag-resource", "--resource-arn", clusterARN, "--tag-keys", "team")
	out = c.ok("ecs", "list-tags-for-resource", "--resource-arn", clusterARN)
	if tags, _ := out["tags"].([]any); len(tags) != 1 || path(out, "tags", 0, "key") != "cost" {
		t.Fatalf("list-tags-for-resource: %v", out)
	}

	inst := seedInstance(t, b, "cli", "0123abcd")
	c.ok("ecs", "put-attributes", "--cluster", "cli", "--attributes", "name=stack,value=prod,targetId="+inst)
	out = c.ok("ecs", "list-attributes", "--cluster", "cli", "--target-type", "container-instance", "--attribute-name", "stack")
	if path(out, "attributes", 0, "value") != "prod" || path(out, "attributes", 0, "targetId") != inst {
		t.Fatalf("list-attributes: %v", out)
	}
	c.ok("ecs", "delete-attributes", "--cluster", "cli", "--attributes", "name=stack,targetId="+inst)

	c.ok("ecs", "put-account-setting-default", "--name", "awsvpcTrunking", "--value", "enabled")
	c.ok("ecs", "put-account-setting", "--name", "containerInsights", "--value", "enhanced")
	out = c.ok("ecs", "list-account-settings", "--effective-settings", "--name", "awsvpcTrunking")
	if path(out, "settings", 0, "value") != "enabled" {
		t.Fatalf("list-account-settings: %v", out)
	}
	c.ok("ecs", "delete-account-setting", "--name", "containerInsights")
	c.fails("InvalidParameterException", "ecs", "put-account-setting", "--name", "containerInsights", "--value", "sometimes")

	c.fails("ClusterContainsContainerInstancesException", "ecs", "delete-cluster", "--cluster", "cli")
	out = c.ok("ecs", "delete-cluster", "--cluster", "cli-2")
	if path(out, "cluster", "status") != "INACTIVE" {
		t.Fatalf("delete-cluster: %v", out)
	}
	c.fails("ClusterNotFoundException", "ecs", "delete-cluster", "--cluster", "cli-2")
	c.fails("UnsupportedFeatureException", "ecs", "describe-capacity-providers")
}

// TestAWSCLIWrongCredentials checks the CLI sees the AWS error for a bad key.
func TestAWSCLIWrongCredentials(t *testing.T) {
	b := startBerth(t)
	c := newCLI(t, b)
	bad := filepath.Join(t.TempDir(), "credentials")
	writeFile(t, bad, "[berth]\naws_access_key_id = "+b.key.AccessKeyID+"\naws_secret_access_key = wrong\n")
	cmd := exec.Command(c.bin, "ecs", "list-clusters", "--endpoint-url", b.endpoint)
	cmd.Env = []string{"HOME=" + c.home, "PATH=" + os.Getenv("PATH"), "AWS_SHARED_CREDENTIALS_FILE=" + bad, "AWS_PROFILE=berth", "AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE=" + filepath.Join(c.home, "config"), "AWS_MAX_ATTEMPTS=1"}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "(InvalidSignatureException)") {
		t.Fatalf("wrong secret through the CLI: %v: %s", err, out)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
