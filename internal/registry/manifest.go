package registry

import (
	"bytes"
	"encoding/json"
	"mime"
	"strings"
)

// Manifest media types the registry stores.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeOCIManifest        = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex           = "application/vnd.oci.image.index.v1+json"

	mediaTypeDockerSchema1       = "application/vnd.docker.distribution.manifest.v1+json"
	mediaTypeDockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
	mediaTypeDockerConfig        = "application/vnd.docker.container.image.v1+json"
	mediaTypeOCIConfig           = "application/vnd.oci.image.config.v1+json"
)

// descriptor is an OCI content descriptor as manifests carry it.
type descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	URLs         []string          `json:"urls,omitempty"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// manifestDoc is the union of the image manifest and index shapes.
type manifestDoc struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *descriptor       `json:"config"`
	Layers        []descriptor      `json:"layers"`
	Manifests     []descriptor      `json:"manifests"`
	Subject       *descriptor       `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
}

// parsedManifest is what PutManifest needs from a manifest.
type parsedManifest struct {
	mediaType    string
	artifactType string
	// blobs are the config and the layers that must be stored (foreign
	// layers with urls are fetched from elsewhere and are not).
	blobs []string
	// layerSize is the sum of the stored layers' sizes.
	layerSize int64
	// children are the manifests an index references.
	children    []string
	subject     string
	annotations map[string]string
}

func isIndex(mediaType string) bool {
	return mediaType == MediaTypeOCIIndex || mediaType == MediaTypeDockerManifestList
}

// parseManifest checks that b is a manifest the registry stores and says
// what it references. mediaType is the type the client declared ("" to
// take the manifest's own mediaType field).
func parseManifest(mediaType string, b []byte) (*parsedManifest, error) {
	if mediaType != "" {
		mt, _, err := mime.ParseMediaType(mediaType)
		if err != nil {
			return nil, errorf(ErrManifestInvalid, "invalid media type %q", mediaType)
		}
		mediaType = mt
	}
	if mediaType == mediaTypeDockerSchema1 || mediaType == mediaTypeDockerSchema1Signed {
		return nil, errorf(ErrManifestInvalid, "Docker image manifest schema 1 is not supported; push with schema 2 or OCI")
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return nil, errorf(ErrManifestInvalid, "the manifest is not a JSON object")
	}
	var m manifestDoc
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, errorf(ErrManifestInvalid, "the manifest is not valid JSON: %v", err)
	}
	if m.SchemaVersion == 1 {
		return nil, errorf(ErrManifestInvalid, "Docker image manifest schema 1 is not supported; push with schema 2 or OCI")
	}
	if m.SchemaVersion != 2 {
		return nil, errorf(ErrManifestInvalid, "unsupported schemaVersion %d", m.SchemaVersion)
	}
	switch {
	case mediaType == "" && m.MediaType != "":
		mediaType = m.MediaType
	case mediaType == "" && m.Manifests != nil:
		mediaType = MediaTypeOCIIndex
	case mediaType == "" && m.Config != nil:
		mediaType = MediaTypeOCIManifest
	case m.MediaType != "" && m.MediaType != mediaType:
		return nil, errorf(ErrManifestInvalid, "the Content-Type %q does not match the manifest's mediaType %q", mediaType, m.MediaType)
	}
	p := &parsedManifest{mediaType: mediaType, artifactType: m.ArtifactType, annotations: m.Annotations}
	if m.Subject != nil {
		if !validDigest(m.Subject.Digest) {
			return nil, errorf(ErrManifestInvalid, "invalid subject digest %q", m.Subject.Digest)
		}
		p.subject = m.Subject.Digest
	}
	switch mediaType {
	case MediaTypeDockerManifest, MediaTypeOCIManifest:
		if m.Config == nil {
			return nil, errorf(ErrManifestInvalid, "an image manifest needs a config")
		}
		if m.Manifests != nil {
			return nil, errorf(ErrManifestInvalid, "an image manifest has no manifests")
		}
		if err := checkDescriptor("config", m.Config); err != nil {
			return nil, err
		}
		p.blobs = append(p.blobs, m.Config.Digest)
		if p.artifactType == "" && m.Config.MediaType != mediaTypeDockerConfig && m.Config.MediaType != mediaTypeOCIConfig {
			p.artifactType = m.Config.MediaType
		}
		for i := range m.Layers {
			l := &m.Layers[i]
			if err := checkDescriptor("layer", l); err != nil {
				return nil, err
			}
			if foreign(l) {
				continue
			}
			p.blobs = append(p.blobs, l.Digest)
			p.layerSize += l.Size
		}
	case MediaTypeDockerManifestList, MediaTypeOCIIndex:
		if m.Config != nil || m.Layers != nil {
			return nil, errorf(ErrManifestInvalid, "an index has no config or layers")
		}
		for i := range m.Manifests {
			if err := checkDescriptor("manifest", &m.Manifests[i]); err != nil {
				return nil, err
			}
			p.children = append(p.children, m.Manifests[i].Digest)
		}
	default:
		return nil, errorf(ErrManifestInvalid, "unsupported manifest media type %q", mediaType)
	}
	return p, nil
}

func checkDescriptor(what string, d *descriptor) error {
	if !validDigest(d.Digest) {
		return errorf(ErrManifestInvalid, "%s has an invalid digest %q", what, d.Digest)
	}
	if d.Size < 0 {
		return errorf(ErrManifestInvalid, "%s %s has a negative size", what, d.Digest)
	}
	return nil
}

// foreign reports whether layer l is non-distributable and fetched from
// its urls, so the registry need not hold it.
func foreign(l *descriptor) bool {
	return len(l.URLs) > 0 &&
		(strings.Contains(l.MediaType, ".foreign.") || strings.Contains(l.MediaType, ".nondistributable."))
}
