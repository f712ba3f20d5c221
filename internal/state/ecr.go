package state

import (
	"errors"

	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/ecrtypes"
	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/store"
)

// ECR key layout. Blob and manifest bytes live on disk, content-addressed
// (package registry); the store holds what refers to them, so a blob is
// visible only once a committed record names it.
//
//	/ecr/repos/<name>                                  Repository
//	/ecr/images/<repo>\x00<digest>                     Image (one manifest in one repository)
//	/ecr/tags/<repo>\x00<tag>                          the digest the tag points at (plain string)
//	/ecr/layers/<repo>\x00<digest>                     Layer: a blob pushed to or mounted in the repository
//	/ecr/referrers/<repo>\x00<subject>\x00<digest>     index: manifests whose subject is <subject> (value: empty)
//	/ecr/blob-refs/<repo>\x00<blob>\x00<image>         index: images of <repo> whose manifest references <blob> (value: empty)
//	/ecr/uploads/<upload id>                           Upload: an upload in progress (its bytes are on disk)
//
// The blob-refs index answers "does an image of this repository reference
// this blob?" with one bounded List instead of decoding every image: a
// blob pushed but no longer linked stays readable through the images that
// reference it. The transaction that stores an image from its manifest
// writes its entries (PutBlobRefs), and every transaction that deletes an
// Image record deletes them (DeleteBlobRefs); other writes of an Image
// (tags, pull times) leave its blobs alone, which are fixed by its digest.
// The index came with the registry before any release, so no data
// directory predates it and there is no migration.
const (
	RepositoriesPrefix = "/ecr/repos/"
	ImagesPrefix       = "/ecr/images/"
	ImageTagsPrefix    = "/ecr/tags/"
	LayersPrefix       = "/ecr/layers/"
	ReferrersPrefix    = "/ecr/referrers/"
	BlobRefsPrefix     = "/ecr/blob-refs/"
	UploadsPrefix      = "/ecr/uploads/"
)

// Repository is one stored ECR repository: the ECR shape plus what the
// repository's other operations keep.
type Repository struct {
	ecrtypes.Repository
	Tags []ecrtypes.Tag `json:"berthTags,omitempty"`
	// LifecyclePolicy is the lifecycle policy text ("" for none);
	// LifecyclePolicyUpdatedAt is when it was last put.
	LifecyclePolicy          string         `json:"berthLifecyclePolicy,omitempty"`
	LifecyclePolicyUpdatedAt *awsmodel.Time `json:"berthLifecyclePolicyUpdatedAt,omitempty"`
	// LifecycleEvaluatedAt is when the lifecycle controller last applied
	// the policy (GetLifecyclePolicy's lastEvaluatedAt).
	LifecycleEvaluatedAt *awsmodel.Time `json:"berthLifecycleEvaluatedAt,omitempty"`
	// LifecyclePreview is the policy text of the last
	// StartLifecyclePolicyPreview ("" for none), and LifecyclePreviewAt
	// when it started; GetLifecyclePolicyPreview evaluates it as of then.
	LifecyclePreview   string         `json:"berthLifecyclePreview,omitempty"`
	LifecyclePreviewAt *awsmodel.Time `json:"berthLifecyclePreviewAt,omitempty"`
	// Policy is the repository policy text ("" for none).
	Policy string `json:"berthPolicy,omitempty"`
}

// Image is one manifest stored in one repository. Its bytes are the blob
// named by Digest.
type Image struct {
	Repository string `json:"repository"`
	// Digest is the manifest's digest ("sha256:<hex>").
	Digest string `json:"digest"`
	// MediaType is the manifest's media type (Docker v2 schema 2, OCI
	// manifest or index, Docker manifest list).
	MediaType string `json:"mediaType"`
	// ArtifactType is the OCI artifactType, or the config media type of an
	// image manifest that is not a container image.
	ArtifactType string `json:"artifactType,omitempty"`
	// ManifestSize is the length of the manifest in bytes.
	ManifestSize int64 `json:"manifestSize"`
	// Size is what DescribeImages reports as imageSizeInBytes: the sum of
	// the layer sizes (for an index, of its children's as pushed).
	Size int64 `json:"size"`
	// Tags point at this image, sorted.
	Tags []string `json:"tags,omitempty"`
	// Blobs are the digests the manifest references (config and layers),
	// which must stay stored while the image exists.
	Blobs []string `json:"blobs,omitempty"`
	// Manifests are the child manifests an index references.
	Manifests []string `json:"manifests,omitempty"`
	// Subject is the digest of the manifest this one refers to (OCI
	// referrers), if any.
	Subject string `json:"subject,omitempty"`
	// Annotations of the manifest, kept for the referrers API.
	Annotations map[string]string `json:"annotations,omitempty"`
	PushedAt    awsmodel.Time     `json:"pushedAt"`
	// LastPulledAt is when a client last fetched the manifest (recorded at
	// most once an hour per image, as ECR does).
	LastPulledAt *awsmodel.Time `json:"lastPulledAt,omitempty"`
}

// Layer is a blob linked into a repository by an upload or a mount. A blob
// is readable through a repository only while it is linked there or
// referenced by one of its images.
type Layer struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	// LinkedAt is when it was last uploaded or mounted; garbage collection
	// keeps a link no image references for a grace period after it.
	LinkedAt awsmodel.Time `json:"linkedAt"`
}

// Upload is a blob upload in progress; its bytes are in the registry's
// uploads directory under ID.
type Upload struct {
	ID         string        `json:"id"`
	Repository string        `json:"repository"`
	StartedAt  awsmodel.Time `json:"startedAt"`
}

// RepositoryKey is the key of repository name.
func RepositoryKey(name string) string { return RepositoriesPrefix + name }

// ImagesRepoPrefix is the prefix of the images of repository repo.
func ImagesRepoPrefix(repo string) string { return ImagesPrefix + repo + sep }

// ImageKey is the key of the image digest in repo.
func ImageKey(repo, digest string) string { return ImagesRepoPrefix(repo) + digest }

// ImageTagsRepoPrefix is the prefix of the tags of repo.
func ImageTagsRepoPrefix(repo string) string { return ImageTagsPrefix + repo + sep }

// ImageTagKey is the key of tag in repo.
func ImageTagKey(repo, tag string) string { return ImageTagsRepoPrefix(repo) + tag }

// LayersRepoPrefix is the prefix of the layers linked into repo.
func LayersRepoPrefix(repo string) string { return LayersPrefix + repo + sep }

// LayerKey is the key of blob digest's link into repo.
func LayerKey(repo, digest string) string { return LayersRepoPrefix(repo) + digest }

// ReferrersRepoPrefix is the prefix of every referrers index entry of repo.
func ReferrersRepoPrefix(repo string) string { return ReferrersPrefix + repo + sep }

// ReferrersSubjectPrefix is the prefix of the manifests in repo whose
// subject is subject.
func ReferrersSubjectPrefix(repo, subject string) string {
	return ReferrersPrefix + repo + sep + subject + sep
}

// ReferrerKey indexes manifest digest as a referrer of subject in repo.
func ReferrerKey(repo, subject, digest string) string {
	return ReferrersSubjectPrefix(repo, subject) + digest
}

// BlobRefsRepoPrefix is the prefix of every blob-refs index entry of repo.
func BlobRefsRepoPrefix(repo string) string { return BlobRefsPrefix + repo + sep }

// BlobRefsBlobPrefix is the prefix of the index entries of the images in
// repo that reference blob.
func BlobRefsBlobPrefix(repo, blob string) string { return BlobRefsRepoPrefix(repo) + blob + sep }

// BlobRefKey indexes image (a manifest digest) as referencing blob in repo.
func BlobRefKey(repo, blob, image string) string { return BlobRefsBlobPrefix(repo, blob) + image }

// PutBlobRefs writes the blob-refs index entries of img, one per blob it
// references (a blob listed twice is one entry). Writing them again is
// harmless.
func PutBlobRefs(tx store.Tx, img *Image) error {
	for _, b := range img.Blobs {
		if err := tx.Put(BlobRefKey(img.Repository, b, img.Digest), nil); err != nil {
			return err
		}
	}
	return nil
}

// DeleteBlobRefs removes the blob-refs index entries of img (those already
// gone, such as a blob listed twice, are skipped).
func DeleteBlobRefs(tx store.Tx, img *Image) error {
	for _, b := range img.Blobs {
		if err := tx.Delete(BlobRefKey(img.Repository, b, img.Digest)); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return err
		}
	}
	return nil
}

// BlobReferenced reports whether an image of repo references blob: one
// index entry read, however many images the repository holds.
func BlobReferenced(tx store.ReadTx, repo, blob string) (bool, error) {
	kvs, err := tx.List(BlobRefsBlobPrefix(repo, blob), "", 1)
	return len(kvs) > 0, err
}

// UploadKey is the key of an upload in progress.
func UploadKey(id string) string { return UploadsPrefix + id }

// Repository is the ARN of ECR repository name.
func (a ARNs) Repository(name string) string {
	return "arn:aws:ecr:" + a.Region + ":" + a.Account + ":repository/" + name
}
