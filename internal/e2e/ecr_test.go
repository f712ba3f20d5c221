package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berthdev/berth/internal/testimage"
)

// ecrClient is an ECR client signed with the admin key.
func (b *berth) ecrClient() *ecr.Client {
	return ecr.NewFromConfig(awsConfig(b.endpoint, b.key.AccessKeyID, b.key.SecretAccessKey, ""))
}

// registryHost is the host:port images in b's registry are named by.
func (b *berth) registryHost() string { return strings.TrimPrefix(b.endpoint, "http://") }

// loginPassword is the registry password from GetAuthorizationToken.
func loginPassword(t *testing.T, c *ecr.Client) string {
	t.Helper()
	out := must[*ecr.GetAuthorizationTokenOutput](t)(c.GetAuthorizationToken(ctx(t), &ecr.GetAuthorizationTokenInput{}))
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(out.AuthorizationData[0].AuthorizationToken))
	if err != nil {
		t.Fatal(err)
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok || user != "AWS" {
		t.Fatalf("authorization token is not AWS:<password>: user %q", user)
	}
	return pass
}

// raw runs the AWS CLI and returns its standard output as text.
func (c *cli) raw(args ...string) string {
	c.t.Helper()
	cmd := exec.Command(c.bin, append(args, "--endpoint-url", c.b.endpoint, "--no-cli-pager")...)
	cmd.Env = []string{
		"HOME=" + c.home, "PATH=" + os.Getenv("PATH"),
		"AWS_SHARED_CREDENTIALS_FILE=" + c.b.cp.CredentialsFile, "AWS_CONFIG_FILE=" + filepath.Join(c.home, "config"),
		"AWS_PROFILE=berth", "AWS_DEFAULT_REGION=us-east-1", "AWS_MAX_ATTEMPTS=1",
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		c.t.Fatalf("aws %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// dockerRun runs the docker CLI with its own config directory and returns its
// combined output and error.
func dockerRun(configDir, stdin string, args ...string) (string, error) {
	cmd := exec.Command("docker", append([]string{"--config", configDir}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestDockerECRPushPullRun is the ECR workflow end to end: create a
// repository and log in with the AWS CLI, `docker push`, see the image in
// DescribeImages, `docker pull` it back, run a task that uses it (the agent
// gets its own credentials), and find anonymous pulls refused.
func TestDockerECRPushPullRun(t *testing.T) {
	cl, _, rt, image := dockerCluster(t)
	b := &berth{cp: cl.CP, endpoint: cl.CP.Endpoint(), key: cl.CP.Key()}
	c := newCLI(t, b)
	host := b.registryHost()

	repo := c.ok("ecr", "create-repository", "--repository-name", "team/web", "--image-tag-mutability", "IMMUTABLE")
	uri, _ := path(repo, "repository", "repositoryUri").(string)
	if uri != host+"/team/web" {
		t.Fatalf("repositoryUri = %q, want %q", uri, host+"/team/web")
	}

	cfg := t.TempDir()
	password := c.raw("ecr", "get-login-password")
	if out, err := dockerRun(cfg, password, "login", "--username", "AWS", "--password-stdin", host); err != nil {
		t.Fatalf("docker login: %v\n%s", err, out)
	}
	ref := uri + ":v1"
	t.Cleanup(func() { _ = rt.RemoveImage(ctx(t), ref) })
	for _, args := range [][]string{{"tag", image, ref}, {"push", ref}} {
		if out, err := dockerRun(cfg, "", args...); err != nil {
			t.Fatalf("docker %v: %v\n%s", args, err, out)
		}
	}

	// DescribeImages knows what docker pushed; the digest is the one docker
	// reports for the repository.
	d := c.ok("ecr", "describe-images", "--repository-name", "team/web")
	img, _ := path(d, "imageDetails", 0).(map[string]any)
	repoDigests, err := exec.Command("docker", "image", "inspect", "--format", "{{json .RepoDigests}}", ref).Output()
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := img["imageDigest"].(string)
	if !strings.Contains(string(repoDigests), uri+"@"+digest) || path(img, "imageTags", 0) != "v1" ||
		img["imageSizeInBytes"].(float64) <= 0 || img["imagePushedAt"] == nil {
		t.Fatalf("describe-images %v; docker's repo digests %s", img, repoDigests)
	}

	// The repository is immutable: v1 cannot be pushed again with other
	// content (an imported one-file image under the same tag).
	tarball := filepath.Join(t.TempDir(), "other.tar")
	writeFile(t, tarball, string(oneFileTar(t)))
	for _, args := range [][]string{{"import", tarball, ref}} {
		if out, err := dockerRun(cfg, "", args...); err != nil {
			t.Fatalf("docker %v: %v\n%s", args, err, out)
		}
	}
	if out, err := dockerRun(cfg, "", "push", ref); err == nil || !strings.Contains(out, "cannot be overwritten because the repository is immutable") {
		t.Fatalf("pushing over an immutable tag: err %v\n%s", err, out)
	}
	if out, err := dockerRun(cfg, "", "tag", image, ref); err != nil {
		t.Fatalf("docker tag: %v\n%s", err, out)
	}

	// Pull it back through the login.
	if out, err := dockerRun(cfg, "", "rmi", ref); err != nil {
		t.Fatalf("docker rmi: %v\n%s", err, out)
	}
	if out, err := dockerRun(cfg, "", "pull", ref); err != nil {
		t.Fatalf("docker pull: %v\n%s", err, out)
	}
	if out, err := dockerRun(cfg, "", "rmi", ref); err != nil {
		t.Fatalf("docker rmi: %v\n%s", err, out)
	}

	// A task using the image: the agent pulls it with credentials it gets
	// from the control plane; nobody configured any.
	ecsc := cl.ECS()
	must[*ecs.RegisterTaskDefinitionOutput](t)(ecsc.RegisterTaskDefinition(ctx(t), &ecs.RegisterTaskDefinitionInput{
		Family:               aws.String("from-ecr"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String(ref), Memory: aws.Int32(32), Command: []string{"sleep"}}},
	}))
	arn := runOne(t, ecsc, &ecs.RunTaskInput{TaskDefinition: aws.String("from-ecr")})
	task := waitTaskStatus(t, ecsc, arn, "RUNNING")
	if ct := containerOf(task, "app"); aws.ToString(ct.Image) != ref || aws.ToString(ct.ImageDigest) != digest {
		t.Fatalf("task container image %q digest %q, want %q %q", aws.ToString(ct.Image), aws.ToString(ct.ImageDigest), ref, digest)
	}

	// Without logging in, the registry refuses.
	anon := t.TempDir()
	if out, err := dockerRun(anon, "", "pull", ref); err == nil || !strings.Contains(strings.ToLower(out), "unauthorized") && !strings.Contains(out, "no basic auth credentials") {
		t.Fatalf("anonymous pull: err %v\n%s", err, out)
	}
}

// oneFileTar is a tar archive holding one small file.
func oneFileTar(t *testing.T) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := []byte("not the test image\n")
	if err := tw.WriteHeader(&tar.Header{Name: "note.txt", Mode: 0o644, Size: int64(len(body))}); err != nil {
		t.Fatal(err)
	}
	tw.Write(body)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestECRCraneSkopeoAndSDK copies an image in and out of Berth's registry
// with crane and skopeo, the two other real registry clients, and checks
// what the ECR API reports with the Go SDK.
func TestECRCraneSkopeoAndSDK(t *testing.T) {
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("skopeo is not installed (apt-get install skopeo); CI must have it")
		}
		t.Skip("skopeo is not installed: apt-get install skopeo")
	}
	b := startBerth(t)
	c := b.ecrClient()
	host := b.registryHost()
	for _, name := range []string{"crane/app", "crane/copy", "skopeo/app"} {
		must[*ecr.CreateRepositoryOutput](t)(c.CreateRepository(ctx(t), &ecr.CreateRepositoryInput{RepositoryName: aws.String(name)}))
	}
	password := loginPassword(t, c)

	img, err := testimage.Build(ctx(t), testimage.DefaultRef)
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "image.tar")
	writeFile(t, archive, string(img.Archive))

	// crane: log in (Docker's config format), push, copy to another
	// repository (a cross-repository mount), list tags, read the digest.
	craneCfg := t.TempDir()
	crane := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("go", append([]string{"tool", "crane", "--insecure"}, args...)...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+craneCfg)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("crane %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return strings.TrimSpace(stdout.String())
	}
	crane("auth", "login", host, "-u", "AWS", "-p", password)
	crane("push", archive, host+"/crane/app:v1")
	crane("copy", host+"/crane/app:v1", host+"/crane/copy:v2")
	if tags := crane("ls", host+"/crane/copy"); tags != "v2" {
		t.Fatalf("crane ls = %q", tags)
	}
	digest := crane("digest", host+"/crane/app:v1")
	if d2 := crane("digest", host+"/crane/copy:v2"); d2 != digest {
		t.Fatalf("copied digest %s, want %s", d2, digest)
	}

	// skopeo: copy in from a docker archive, then out to an OCI layout,
	// and inspect.
	creds := "AWS:" + password
	skopeoRun := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(skopeo, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	skopeoRun("copy", "--dest-tls-verify=false", "--dest-creds", creds, "docker-archive:"+archive, "docker://"+host+"/skopeo/app:v1")
	layout := t.TempDir()
	skopeoRun("copy", "--src-tls-verify=false", "--src-creds", creds, "docker://"+host+"/skopeo/app:v1", "oci:"+layout+":v1")
	var inspect struct {
		Digest string
		Layers []string
	}
	if err := json.Unmarshal([]byte(skopeoRun("inspect", "--tls-verify=false", "--creds", creds, "docker://"+host+"/skopeo/app:v1")), &inspect); err != nil {
		t.Fatal(err)
	}
	if len(inspect.Layers) != 1 {
		t.Fatalf("skopeo inspect: %+v", inspect)
	}
	if _, err := exec.Command(skopeo, "inspect", "--tls-verify=false", "docker://"+host+"/skopeo/app:v1").CombinedOutput(); err == nil {
		t.Fatal("skopeo inspect without credentials succeeded")
	}

	// What the ECR API says about them.
	d := must[*ecr.DescribeImagesOutput](t)(c.DescribeImages(ctx(t), &ecr.DescribeImagesInput{RepositoryName: aws.String("skopeo/app")}))
	if len(d.ImageDetails) != 1 || aws.ToString(d.ImageDetails[0].ImageDigest) != inspect.Digest || d.ImageDetails[0].ImageTags[0] != "v1" {
		t.Fatalf("describe-images: %+v, skopeo digest %s", d.ImageDetails, inspect.Digest)
	}
	got := must[*ecr.BatchGetImageOutput](t)(c.BatchGetImage(ctx(t), &ecr.BatchGetImageInput{
		RepositoryName: aws.String("crane/copy"), ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String("v2")}, {ImageTag: aws.String("nope")}},
	}))
	if len(got.Images) != 1 || aws.ToString(got.Images[0].ImageId.ImageDigest) != digest || len(got.Failures) != 1 ||
		got.Failures[0].FailureCode != ecrtypes.ImageFailureCodeImageNotFound {
		t.Fatalf("batch-get-image: %+v failures %+v", got.Images, got.Failures)
	}
	layers := must[*ecr.BatchCheckLayerAvailabilityOutput](t)(c.BatchCheckLayerAvailability(ctx(t), &ecr.BatchCheckLayerAvailabilityInput{
		RepositoryName: aws.String("crane/copy"), LayerDigests: []string{img.ID},
	}))
	if len(layers.Layers) != 1 || layers.Layers[0].LayerAvailability != ecrtypes.LayerAvailabilityAvailable {
		t.Fatalf("the config blob copied by crane is not available: %+v %+v", layers.Layers, layers.Failures)
	}
	// Deleting the only tag deletes the image (ECR's rule); crane then finds nothing.
	must[*ecr.BatchDeleteImageOutput](t)(c.BatchDeleteImage(ctx(t), &ecr.BatchDeleteImageInput{
		RepositoryName: aws.String("crane/copy"), ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String("v2")}},
	}))
	if tags := crane("ls", host+"/crane/copy"); tags != "" {
		t.Fatalf("tags after delete: %q", tags)
	}

	// The registry's traffic shows in the Prometheus exposition.
	resp, err := http.Get(b.endpoint + "/_berth/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"berth_registry_pushed_bytes_total ", "berth_registry_pulled_bytes_total ", `berth_registry_requests_total{`} {
		i := strings.Index(string(metrics), want)
		if i < 0 || strings.HasPrefix(string(metrics[i+len(want):]), "0\n") {
			t.Errorf("metrics lack a non-zero %s", want)
		}
	}
}

// TestECRLifecyclePolicyWithCLI puts a lifecycle policy with the AWS CLI and
// watches it expire images: of four pushed images, the two newest stay.
func TestECRLifecyclePolicyWithCLI(t *testing.T) {
	b := startBerth(t)
	c := newCLI(t, b)
	c.ok("ecr", "create-repository", "--repository-name", "keep/two")
	auth := remote.WithAuth(&authn.Basic{Username: "AWS", Password: loginPassword(t, b.ecrClient())})
	for i := 1; i <= 4; i++ {
		ref, err := name.ParseReference(fmt.Sprintf("%s/keep/two:v%d", b.registryHost(), i), name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, randomImage(t, 1024), auth); err != nil {
			t.Fatalf("push v%d: %v", i, err)
		}
	}
	policy := `{"rules":[{"rulePriority":1,"description":"keep two","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}}]}`
	out := c.ok("ecr", "put-lifecycle-policy", "--repository-name", "keep/two", "--lifecycle-policy-text", policy)
	if path(out, "repositoryName") != "keep/two" || path(out, "lifecyclePolicyText") != policy {
		t.Fatalf("put-lifecycle-policy: %v", out)
	}
	c.fails("InvalidParameterException", "ecr", "put-lifecycle-policy", "--repository-name", "keep/two",
		"--lifecycle-policy-text", `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}}]}`)
	var tags []string
	eventually(t, "the lifecycle policy expired two images", func() bool {
		tags = tags[:0]
		for _, id := range path(c.ok("ecr", "list-images", "--repository-name", "keep/two"), "imageIds").([]any) {
			tags = append(tags, path(id, "imageTag").(string))
		}
		return len(tags) == 2
	})
	slices.Sort(tags)
	if !slices.Equal(tags, []string{"v3", "v4"}) {
		t.Fatalf("kept %v, want the newest two", tags)
	}
	c.ok("ecr", "delete-lifecycle-policy", "--repository-name", "keep/two")
	c.fails("LifecyclePolicyNotFoundException", "ecr", "get-lifecycle-policy", "--repository-name", "keep/two")
}
