package ecr_test

import (
	"context"
	"testing"

	"github.com/berthdev/berth/internal/api/supporttest"
)

// FuzzHandlers sends arbitrary bodies through the whole ECR API path:
// decoding, model validation, ECR's own rules, the registry and the store.
// A request may succeed or be refused with a client error; it must never
// panic or end in an internal or unmapped error, and the store must stay
// readable.
func FuzzHandlers(f *testing.F) {
	d := "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	seeds := []struct {
		op   string
		body string
	}{
		{"CreateRepository", `{"repositoryName":"web/api","imageTagMutability":"IMMUTABLE_WITH_EXCLUSION","imageTagMutabilityExclusionFilters":[{"filterType":"WILDCARD","filter":"dev*"}],"encryptionConfiguration":{"encryptionType":"KMS"},"tags":[{"Key":"a","Value":"b"}]}`},
		{"DescribeRepositories", `{"maxResults":1,"nextToken":"YXBw"}`},
		{"DescribeRepositories", `{"repositoryNames":["app","web/api"],"registryId":"000000000000"}`},
		{"DeleteRepository", `{"repositoryName":"web/api","force":true}`},
		{"PutImageTagMutability", `{"repositoryName":"app","imageTagMutability":"MUTABLE_WITH_EXCLUSION","imageTagMutabilityExclusionFilters":[{"filterType":"WILDCARD","filter":"v*"}]}`},
		{"PutImageScanningConfiguration", `{"repositoryName":"app","imageScanningConfiguration":{"scanOnPush":true}}`},
		{"ListImages", `{"repositoryName":"app","maxResults":1,"filter":{"tagStatus":"TAGGED"},"nextToken":"c2hhMjU2OmFiYwB2MQ"}`},
		{"DescribeImages", `{"repositoryName":"app","imageIds":[{"imageTag":"v1"},{"imageDigest":"` + d + `"}]}`},
		{"DescribeImages", `{"repositoryName":"app","filter":{"tagStatus":"UNTAGGED","imageStatus":"ANY"},"maxResults":2}`},
		{"BatchGetImage", `{"repositoryName":"app","imageIds":[{"imageTag":"v1"},{"imageDigest":"x:y"},{}],"acceptedMediaTypes":["application/vnd.oci.image.manifest.v1+json"]}`},
		{"BatchDeleteImage", `{"repositoryName":"app","imageIds":[{"imageTag":"v1"},{"imageDigest":"` + d + `","imageTag":"v2"}]}`},
		{"PutImage", `{"repositoryName":"app","imageTag":"v2","imageManifest":"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"size\":1,\"digest\":\"` + d + `\"}]}"}`},
		{"PutImage", `{"repositoryName":"app","imageManifest":"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"size\":1,\"digest\":\"` + d + `\"},\"layers\":[]}","imageDigest":"` + d + `"}`},
		{"InitiateLayerUpload", `{"repositoryName":"app"}`},
		{"UploadLayerPart", `{"repositoryName":"app","uploadId":"00000000-0000-4000-8000-000000000000","partFirstByte":0,"partLastByte":2,"layerPartBlob":"YWJj"}`},
		{"CompleteLayerUpload", `{"repositoryName":"app","uploadId":"00000000-0000-4000-8000-000000000000","layerDigests":["` + d + `"]}`},
		{"BatchCheckLayerAvailability", `{"repositoryName":"app","layerDigests":["` + d + `","","sha512:ab"]}`},
		{"GetDownloadUrlForLayer", `{"repositoryName":"app","layerDigest":"` + d + `"}`},
		{"GetAuthorizationToken", `{"registryIds":["000000000000"]}`},
		{"PutLifecyclePolicy", `{"repositoryName":"app","lifecyclePolicyText":"{\"rules\":[{\"rulePriority\":1,\"selection\":{\"tagStatus\":\"tagged\",\"tagPatternList\":[\"v*\"],\"countType\":\"sinceImagePushed\",\"countUnit\":\"days\",\"countNumber\":1},\"action\":{\"type\":\"expire\"}}]}"}`},
		{"StartLifecyclePolicyPreview", `{"repositoryName":"app"}`},
		{"GetLifecyclePolicyPreview", `{"repositoryName":"app","maxResults":1,"filter":{"tagStatus":"ANY"}}`},
		{"DeleteLifecyclePolicy", `{"repositoryName":"app"}`},
		{"SetRepositoryPolicy", `{"repositoryName":"app","policyText":"{\"Statement\":[]}"}`},
		{"TagResource", `{"resourceArn":"arn:aws:ecr:us-east-1:000000000000:repository/app","tags":[{"Key":"k","Value":"v"}]}`},
		{"UntagResource", `{"resourceArn":"arn:aws:ecr:us-east-1:000000000000:repository/app","tagKeys":["k"]}`},
		{"ListTagsForResource", `{"resourceArn":"arn:aws:ecr:us-east-1:000000000000:repository/app"}`},
		{"DescribeRegistry", `{}`},
	}
	ops := make([]string, len(seeds))
	for i, s := range seeds {
		ops[i] = s.op
		f.Add(uint8(i), []byte(s.body))
	}
	fx := newFixture(f)
	fx.createRepo("app")
	fx.push("app", "v1", "seed")
	dispatch := fx.api.JSONService().Dispatch
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		name := ops[int(op)%len(ops)]
		_, err := dispatch(context.Background(), name, body)
		supporttest.RequireClientError(t, name, body, err)
		// The store still answers.
		if _, err := dispatch(context.Background(), "DescribeRepositories", []byte(`{}`)); err != nil {
			t.Fatalf("store unreadable after %s(%q): %v", name, body, err)
		}
	})
}
