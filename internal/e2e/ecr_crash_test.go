package e2e

import (
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// randomImage is an OCI image of random layers of the given sizes.
func randomImage(t *testing.T, sizes ...int) v1.Image {
	t.Helper()
	var layers []v1.Layer
	for _, n := range sizes {
		b := make([]byte, n)
		rand.Read(b)
		layers = append(layers, static.NewLayer(b, types.OCILayer))
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layers...)
	if err != nil {
		t.Fatal(err)
	}
	return mutate.ConfigMediaType(img, types.OCIConfigJSON)
}

// pullVerified pulls ref and reads every blob to the end; the client
// checks each digest as it reads, so a truncated or wrong blob fails.
func pullVerified(ref name.Reference, opts ...remote.Option) error {
	img, err := remote.Image(ref, opts...)
	if err != nil {
		return err
	}
	if _, err := img.RawConfigFile(); err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// TestKill9DuringPushLeavesRegistryConsistent kills a berth process with
// SIGKILL while an image is being pushed, restarts it on the same data, and
// checks that nothing half-written is visible: no image, each layer either
// wholly there (it reads back with the right digest) or absent. The same
// push then succeeds, and an acknowledged push survives a second SIGKILL.
func TestKill9DuringPushLeavesRegistryConsistent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a berth process")
	}
	bin := buildBerth(t)
	dir, addr := t.TempDir(), freePort(t)
	cmd := startProcess(t, bin, dir, addr)
	b := &berth{endpoint: "http://" + addr}
	c := ecr.NewFromConfig(awsConfig(b.endpoint, durKeyID, durSecret, ""))
	must[*ecr.CreateRepositoryOutput](t)(c.CreateRepository(ctx(t), &ecr.CreateRepositoryInput{RepositoryName: aws.String("crash/app")}))
	auth := remote.WithAuth(&authn.Basic{Username: "AWS", Password: loginPassword(t, c)})
	ref, err := name.ParseReference(addr+"/crash/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img := randomImage(t, 48<<20, 48<<20, 48<<20, 1<<20)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, l := range layers {
		n, _ := l.Size()
		total += n
	}

	// Push, and kill the server once a third of the bytes are sent.
	progress := make(chan v1.Update, 1024)
	pushed := make(chan error, 1)
	go func() { pushed <- remote.Write(ref, img, auth, remote.WithProgress(progress), remote.WithJobs(2)) }()
	killed := false
	for u := range progress {
		if !killed && u.Complete > total/3 {
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			cmd.Wait()
			killed = true
		}
	}
	if err := <-pushed; err == nil || !killed {
		t.Fatalf("push finished before the kill (killed %v, err %v)", killed, err)
	}

	cmd = startProcess(t, bin, dir, addr)
	if _, err := c.DescribeImages(ctx(t), &ecr.DescribeImagesInput{RepositoryName: aws.String("crash/app"), ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String("v1")}}}); !isImageNotFound(err) {
		t.Fatalf("describe-images after the crash: %v, want ImageNotFoundException", err)
	}
	for _, l := range layers {
		d, _ := l.Digest()
		resp := getBlob(t, addr, "crash/app", d.String(), loginPassword(t, c))
		switch resp.StatusCode {
		case http.StatusNotFound:
		case http.StatusOK:
			lref, _ := name.NewDigest(addr+"/crash/app@"+d.String(), name.Insecure)
			rl, err := remote.Layer(lref, auth)
			if err != nil {
				t.Fatal(err)
			}
			rc, err := rl.Compressed()
			if err == nil {
				_, err = io.Copy(io.Discard, rc)
				rc.Close()
			}
			if err != nil {
				t.Fatalf("layer %s is visible after the crash but does not read back whole: %v", d, err)
			}
		default:
			t.Fatalf("GET blob %s after the crash: %s", d, resp.Status)
		}
	}

	// The push succeeds after the restart, and what it acknowledged
	// survives another SIGKILL.
	if err := remote.Write(ref, img, auth); err != nil {
		t.Fatalf("push after restart: %v", err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	startProcess(t, bin, dir, addr)
	if err := pullVerified(ref, auth); err != nil {
		t.Fatalf("pull after the second kill: %v", err)
	}
}

func isImageNotFound(err error) bool {
	var nf *ecrtypes.ImageNotFoundException
	return errors.As(err, &nf)
}

// getBlob GETs a blob with the registry password.
func getBlob(t *testing.T, addr, repo, digest, password string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v2/"+repo+"/blobs/"+digest, nil)
	req.SetBasicAuth("AWS", password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}
