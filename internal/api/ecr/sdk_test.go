package ecr_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sdkecr "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/smithy-go"

	"github.com/berthdev/berth/internal/api"
	"github.com/berthdev/berth/internal/api/sigv4"
	"github.com/berthdev/berth/internal/registry"
	"github.com/berthdev/berth/internal/sdkhttp"
)

// TestSDKRoundTrip drives the ECR API with the AWS Go SDK's ECR client,
// SigV4-signed, through the real front door: the wire shapes, error types,
// paginators and a layer part larger than the front door's default body cap.
func TestSDKRoundTrip(t *testing.T) {
	f := newFixture(t)
	const keyID, secret = "AKIDBERTHTEST0000001", "berth-test-secret-key-0000000000000000000"
	front, err := api.New(api.Config{
		Region: region, Account: account,
		Auth: &sigv4.Verifier{Lookup: func(_ context.Context, id string) (sigv4.Credentials, bool) {
			return sigv4.Credentials{AccessKeyID: keyID, SecretAccessKey: secret}, id == keyID
		}},
		Services: []*api.JSONService{f.api.JSONService()},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(front)
	defer srv.Close()
	c := sdkecr.NewFromConfig(aws.Config{
		Region:           region,
		Credentials:      credentials.NewStaticCredentialsProvider(keyID, secret, ""),
		BaseEndpoint:     aws.String(srv.URL),
		RetryMaxAttempts: 1,
		HTTPClient:       sdkhttp.Client(),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	created, err := c.CreateRepository(ctx, &sdkecr.CreateRepositoryInput{RepositoryName: aws.String("sdk/app")})
	if err != nil {
		t.Fatal(err)
	}
	r := created.Repository
	if aws.ToString(r.RepositoryUri) != host+"/sdk/app" || aws.ToString(r.RepositoryArn) != arnBase+"sdk/app" || !r.CreatedAt.Equal(f.clk.Now()) ||
		r.ImageTagMutability != types.ImageTagMutabilityMutable || r.EncryptionConfiguration.EncryptionType != types.EncryptionTypeAes256 {
		t.Fatalf("repository = %+v", r)
	}
	_, err = c.CreateRepository(ctx, &sdkecr.CreateRepositoryInput{RepositoryName: aws.String("sdk/app")})
	var exists *types.RepositoryAlreadyExistsException
	if !errors.As(err, &exists) {
		t.Fatalf("second create: %v", err)
	}
	// No maxResults, as the CLI and SDK usually send.
	repos, err := c.DescribeRepositories(ctx, &sdkecr.DescribeRepositoriesInput{})
	if err != nil || len(repos.Repositories) != 1 {
		t.Fatalf("DescribeRepositories = %+v, %v", repos, err)
	}

	auth, err := c.GetAuthorizationToken(ctx, &sdkecr.GetAuthorizationTokenInput{})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(aws.ToString(auth.AuthorizationData[0].AuthorizationToken))
	if pw, ok := strings.CutPrefix(string(raw), "AWS:"); !ok {
		t.Fatalf("token %q", raw)
	} else if p, err := f.reg.VerifyToken(pw); err != nil || p != "arn:aws:iam::"+account+":root" {
		t.Fatalf("token principal %q, %v", p, err)
	}

	// Layers through the SDK: a 3 MiB part exceeds the front door's default
	// 2 MiB cap, so it passes only under ECR's own.
	upload := func(data []byte, part int) string {
		t.Helper()
		init, err := c.InitiateLayerUpload(ctx, &sdkecr.InitiateLayerUploadInput{RepositoryName: aws.String("sdk/app")})
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off < len(data); off += part {
			end := min(off+part, len(data))
			out, err := c.UploadLayerPart(ctx, &sdkecr.UploadLayerPartInput{
				RepositoryName: aws.String("sdk/app"), UploadId: init.UploadId,
				PartFirstByte: aws.Int64(int64(off)), PartLastByte: aws.Int64(int64(end - 1)), LayerPartBlob: data[off:end],
			})
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToInt64(out.LastByteReceived) != int64(end-1) {
				t.Fatalf("lastByteReceived = %d", aws.ToInt64(out.LastByteReceived))
			}
		}
		d := digestOf(data)
		if _, err := c.CompleteLayerUpload(ctx, &sdkecr.CompleteLayerUploadInput{RepositoryName: aws.String("sdk/app"), UploadId: init.UploadId, LayerDigests: []string{d}}); err != nil {
			t.Fatal(err)
		}
		return d
	}
	layer := bytes.Repeat([]byte("0123456789abcdef"), 4<<20/16) // 4 MiB in a 3 MiB and a 1 MiB part
	layerDigest := upload(layer, 3<<20)
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	configDigest := upload(config, 1<<20)
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": registry.MediaTypeOCIManifest,
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "size": len(config), "digest": configDigest},
		"layers": []map[string]any{{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": len(layer), "digest": layerDigest}},
	})
	put, err := c.PutImage(ctx, &sdkecr.PutImageInput{RepositoryName: aws.String("sdk/app"), ImageTag: aws.String("v1"), ImageManifest: aws.String(string(manifest))})
	if err != nil {
		t.Fatal(err)
	}
	digest := aws.ToString(put.Image.ImageId.ImageDigest)
	_, err = c.PutImage(ctx, &sdkecr.PutImageInput{RepositoryName: aws.String("sdk/app"), ImageTag: aws.String("v1"), ImageManifest: aws.String(string(manifest))})
	var already *types.ImageAlreadyExistsException
	if !errors.As(err, &already) {
		t.Fatalf("PutImage again: %v", err)
	}

	avail, err := c.BatchCheckLayerAvailability(ctx, &sdkecr.BatchCheckLayerAvailabilityInput{RepositoryName: aws.String("sdk/app"), LayerDigests: []string{layerDigest}})
	if err != nil || avail.Layers[0].LayerAvailability != types.LayerAvailabilityAvailable || aws.ToInt64(avail.Layers[0].LayerSize) != int64(len(layer)) {
		t.Fatalf("BatchCheckLayerAvailability = %+v, %v", avail, err)
	}

	var details []types.ImageDetail
	for p := sdkecr.NewDescribeImagesPaginator(c, &sdkecr.DescribeImagesInput{RepositoryName: aws.String("sdk/app")}); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		details = append(details, page.ImageDetails...)
	}
	if len(details) != 1 || aws.ToString(details[0].ImageDigest) != digest || aws.ToInt64(details[0].ImageSizeInBytes) != int64(len(layer)) ||
		!details[0].ImagePushedAt.Equal(f.clk.Now()) || aws.ToString(details[0].ImageManifestMediaType) != registry.MediaTypeOCIManifest ||
		aws.ToString(details[0].ArtifactMediaType) != "application/vnd.oci.image.config.v1+json" || details[0].ImageTags[0] != "v1" {
		t.Fatalf("DescribeImages = %+v", details)
	}
	var ids []types.ImageIdentifier
	for p := sdkecr.NewListImagesPaginator(c, &sdkecr.ListImagesInput{RepositoryName: aws.String("sdk/app"), MaxResults: aws.Int32(1)}); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, page.ImageIds...)
	}
	if len(ids) != 1 || aws.ToString(ids[0].ImageTag) != "v1" {
		t.Fatalf("ListImages = %+v", ids)
	}
	got, err := c.BatchGetImage(ctx, &sdkecr.BatchGetImageInput{RepositoryName: aws.String("sdk/app"), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}, {ImageTag: aws.String("nope")}}})
	if err != nil || len(got.Images) != 1 || aws.ToString(got.Images[0].ImageManifest) != string(manifest) || len(got.Failures) != 1 || got.Failures[0].FailureCode != types.ImageFailureCodeImageNotFound {
		t.Fatalf("BatchGetImage = %+v, %v", got, err)
	}

	if _, err := c.PutLifecyclePolicy(ctx, &sdkecr.PutLifecyclePolicyInput{RepositoryName: aws.String("sdk/app"), LifecyclePolicyText: aws.String(keepOneUntagged)}); err != nil {
		t.Fatal(err)
	}
	lp, err := c.GetLifecyclePolicy(ctx, &sdkecr.GetLifecyclePolicyInput{RepositoryName: aws.String("sdk/app")})
	if err != nil || aws.ToString(lp.LifecyclePolicyText) != keepOneUntagged {
		t.Fatalf("GetLifecyclePolicy = %+v, %v", lp, err)
	}

	del, err := c.BatchDeleteImage(ctx, &sdkecr.BatchDeleteImageInput{RepositoryName: aws.String("sdk/app"), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}}})
	if err != nil || len(del.ImageIds) != 1 || len(del.Failures) != 0 {
		t.Fatalf("BatchDeleteImage = %+v, %v", del, err)
	}
	_, err = c.DescribeImages(ctx, &sdkecr.DescribeImagesInput{RepositoryName: aws.String("sdk/app"), ImageIds: []types.ImageIdentifier{{ImageDigest: aws.String(digest)}}})
	var noImage *types.ImageNotFoundException
	if !errors.As(err, &noImage) {
		t.Fatalf("the last tag's deletion left the image: %v", err)
	}

	// An operation Berth does not implement is an error (400) naming it.
	_, err = c.GetRegistryPolicy(ctx, &sdkecr.GetRegistryPolicyInput{})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "UnsupportedCommandException" || !strings.Contains(ae.ErrorMessage(), "GetRegistryPolicy") {
		t.Fatalf("unimplemented: %v", err)
	}

	if _, err := c.DeleteRepository(ctx, &sdkecr.DeleteRepositoryInput{RepositoryName: aws.String("sdk/app"), Force: true}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DescribeRepositories(ctx, &sdkecr.DescribeRepositoriesInput{RepositoryNames: []string{"sdk/app"}})
	var noRepo *types.RepositoryNotFoundException
	if !errors.As(err, &noRepo) || !strings.Contains(noRepo.ErrorMessage(), "The repository with name 'sdk/app' does not exist in the registry with id '000000000000'") {
		t.Fatalf("after delete: %v", err)
	}
}
