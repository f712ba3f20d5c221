package e2e

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"golang.org/x/crypto/bcrypt"

	"github.com/berthdev/berth/internal/agent"
)

// startRegistry runs Debian's docker-registry (the distribution registry)
// on a loopback port with basic auth for user/pass, and returns its host.
// Without the package the test is skipped outside CI and fails in CI.
func startRegistry(t *testing.T, user, pass string) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("docker-registry is not installed (apt-get install docker-registry); CI must have it")
		}
		t.Skip("docker-registry is not installed: apt-get install docker-registry")
	}
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "htpasswd"), user+":"+string(hash)+"\n")
	addr := freePort(t)
	writeFile(t, filepath.Join(dir, "config.yml"), fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s/data
http:
  addr: %s
auth:
  htpasswd:
    realm: berth-test
    path: %s/htpasswd
`, dir, addr, dir))
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	eventually(t, "registry up", func() bool {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusUnauthorized
	})
	return addr
}

// dockerCLI runs the docker CLI with its own config directory.
func dockerCLI(t *testing.T, configDir string, stdin string, args ...string) {
	t.Helper()
	cmd := exec.Command("docker", append([]string{"--config", configDir}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestDockerPrivateRegistryPull: a task whose image lives in a registry that
// needs credentials fails with CannotPullContainerError on an agent without
// them, and runs on an agent given them in Docker's config.json format.
func TestDockerPrivateRegistryPull(t *testing.T) {
	cl, a, rt, image := dockerCluster(t)
	host := startRegistry(t, "berth", "s3cret")
	cfgDir := t.TempDir()
	private := host + "/team/app:1"
	dockerCLI(t, cfgDir, "s3cret", "login", host, "-u", "berth", "--password-stdin")
	dockerCLI(t, cfgDir, "", "tag", image, private)
	dockerCLI(t, cfgDir, "", "push", private)
	dockerCLI(t, cfgDir, "", "rmi", private) // the agent has to pull it
	t.Cleanup(func() { _ = rt.RemoveImage(ctx(t), private) })

	c := cl.ECS()
	must[*ecs.RegisterTaskDefinitionOutput](t)(c.RegisterTaskDefinition(ctx(t), &ecs.RegisterTaskDefinitionInput{
		Family:               aws.String("private"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String(private), Memory: aws.Int32(32), Command: []string{"sleep"}}},
	}))
	arn := runOne(t, c, &ecs.RunTaskInput{TaskDefinition: aws.String("private")})
	failed := waitTaskStatus(t, c, arn, "STOPPED")
	if failed.StopCode != types.TaskStopCodeTaskFailedToStart || !strings.HasPrefix(aws.ToString(failed.StoppedReason), "CannotPullContainerError") {
		t.Fatalf("pull without credentials: %s %q", failed.StopCode, aws.ToString(failed.StoppedReason))
	}

	// The same host's agent, restarted with the registry's credentials.
	a.Stop()
	authFile := filepath.Join(t.TempDir(), "config.json")
	writeFile(t, authFile, fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, host, base64.StdEncoding.EncodeToString([]byte("berth:s3cret"))))
	auth, err := agent.LoadDockerConfig(authFile)
	if err != nil {
		t.Fatal(err)
	}
	withAuth := cl.AddAgent("dock", rt, func(c *agent.Config) { c.RegistryAuth = auth })
	eventually(t, "the old instance disconnected", func() bool {
		d := must[*ecs.DescribeContainerInstancesOutput](t)(c.DescribeContainerInstances(ctx(t), &ecs.DescribeContainerInstancesInput{Cluster: aws.String("dock"), ContainerInstances: []string{a.InstanceID()}}))
		return !d.ContainerInstances[0].AgentConnected
	})
	arn = runOne(t, c, &ecs.RunTaskInput{TaskDefinition: aws.String("private")})
	task := waitTaskStatus(t, c, arn, "RUNNING")
	if aws.ToString(task.ContainerInstanceArn) != withAuth.InstanceARN() || task.PullStartedAt == nil || task.PullStoppedAt == nil || task.PullStoppedAt.Before(*task.PullStartedAt) {
		t.Fatalf("pulled task: instance %s, pull %v..%v", aws.ToString(task.ContainerInstanceArn), task.PullStartedAt, task.PullStoppedAt)
	}
}
