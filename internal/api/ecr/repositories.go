package ecr

import (
	"context"
	"errors"
	"slices"

	"github.com/berthdev/berth/internal/awsmodel"
	"github.com/berthdev/berth/internal/awsmodel/ecrtypes"
	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/registry"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// defaultPage is how many items ECR's Describe and List operations return
// when maxResults is not given.
const defaultPage = 100

// CreateRepository creates a repository with ECR's defaults: MUTABLE tags,
// no scan on push, AES256 encryption.
func (s *Service) CreateRepository(ctx context.Context, in *ecrtypes.CreateRepositoryRequest) (*ecrtypes.CreateRepositoryResponse, error) {
	if err := s.checkRegistry(in.RegistryId, ""); err != nil {
		return nil, err
	}
	mutability, filters, err := checkMutability(in.ImageTagMutability, in.ImageTagMutabilityExclusionFilters)
	if err != nil {
		return nil, err
	}
	enc, err := checkEncryption(in.EncryptionConfiguration)
	if err != nil {
		return nil, err
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	scanning := &ecrtypes.ImageScanningConfiguration{}
	if in.ImageScanningConfiguration != nil {
		scanning = in.ImageScanningConfiguration
	}
	name := in.RepositoryName
	rec := &state.Repository{
		Repository: ecrtypes.Repository{
			RepositoryArn:                      s.arns.Repository(name),
			RegistryId:                         s.account,
			RepositoryName:                     name,
			RepositoryUri:                      s.reg.Host() + "/" + name,
			CreatedAt:                          awsmodel.NewTime(s.now()),
			ImageTagMutability:                 mutability,
			ImageTagMutabilityExclusionFilters: filters,
			ImageScanningConfiguration:         scanning,
			EncryptionConfiguration:            enc,
		},
		Tags: slices.Clone(in.Tags),
	}
	_, err = s.store.Update(ctx, func(tx store.Tx) error {
		return state.Create(tx, state.RepositoryKey(name), rec)
	})
	if errors.Is(err, errdefs.ErrAlreadyExists) {
		return nil, ecrtypes.NewRepositoryAlreadyExistsException("The repository with name '%s' already exists in the registry with id '%s'", name, s.account)
	}
	if err != nil {
		return nil, err
	}
	s.log.Info("repository created", "repository", name)
	return &ecrtypes.CreateRepositoryResponse{Repository: &rec.Repository}, nil
}

// checkMutability applies ECR's rules to a tag mutability setting and
// returns it with its default (MUTABLE): exclusion filters go with the
// *_WITH_EXCLUSION settings and only with them.
func checkMutability(m ecrtypes.ImageTagMutability, filters []ecrtypes.ImageTagMutabilityExclusionFilter) (ecrtypes.ImageTagMutability, []ecrtypes.ImageTagMutabilityExclusionFilter, error) {
	if m == "" {
		m = ecrtypes.ImageTagMutabilityMutable
	}
	withExclusion := m == ecrtypes.ImageTagMutabilityImmutableWithExclusion || m == ecrtypes.ImageTagMutabilityMutableWithExclusion
	switch {
	case withExclusion && len(filters) == 0:
		return "", nil, invalidParam("Invalid parameter at 'imageTagMutabilityExclusionFilters': imageTagMutability %s requires at least one exclusion filter", m)
	case !withExclusion && len(filters) > 0:
		return "", nil, invalidParam("Invalid parameter at 'imageTagMutabilityExclusionFilters': exclusion filters can only be used with imageTagMutability IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION, not %s", m)
	}
	return m, slices.Clone(filters), nil
}

// checkEncryption returns the encryption configuration with ECR's default
// (AES256). A KMS key is recorded as given: Berth encrypts nothing itself.
func checkEncryption(c *ecrtypes.EncryptionConfiguration) (*ecrtypes.EncryptionConfiguration, error) {
	if c == nil {
		return &ecrtypes.EncryptionConfiguration{EncryptionType: ecrtypes.EncryptionTypeAes256}, nil
	}
	out := *c
	switch out.EncryptionType {
	case "":
		return nil, invalidParam("Invalid parameter at 'encryptionConfiguration.encryptionType': it is required")
	case ecrtypes.EncryptionTypeAes256:
		if out.KmsKey != "" {
			return nil, invalidParam("Invalid parameter at 'encryptionConfiguration.kmsKey': a KMS key can only be given with encryptionType KMS or KMS_DSSE")
		}
	}
	return &out, nil
}

// DescribeRepositories describes the named repositories, or pages through
// all of them in name order.
func (s *Service) DescribeRepositories(ctx context.Context, in *ecrtypes.DescribeRepositoriesRequest) (*ecrtypes.DescribeRepositoriesResponse, error) {
	out := &ecrtypes.DescribeRepositoriesResponse{}
	if len(in.RepositoryNames) > 0 {
		if in.MaxResults != 0 || in.NextToken != "" {
			return nil, invalidParam("Invalid parameter: maxResults and nextToken cannot be used when repositories are specified with repositoryNames")
		}
		err := s.store.View(ctx, func(tx store.ReadTx) error {
			for _, name := range in.RepositoryNames {
				rec, err := s.repository(tx, in.RegistryId, name)
				if err != nil {
					return err
				}
				out.Repositories = append(out.Repositories, rec.Repository)
			}
			return nil
		})
		return out, err
	}
	if err := s.checkRegistry(in.RegistryId, ""); err != nil {
		return nil, err
	}
	p, err := newPage(in.MaxResults, in.NextToken, defaultPage)
	if err != nil {
		return nil, err
	}
	err = s.store.View(ctx, func(tx store.ReadTx) error {
		out.NextToken, err = scan(tx, state.RepositoriesPrefix, p, func(kv store.KV) (bool, error) {
			rec, err := state.Decode[state.Repository](kv)
			if err != nil {
				return false, err
			}
			out.Repositories = append(out.Repositories, rec.Repository)
			return true, nil
		})
		return err
	})
	return out, err
}

// DeleteRepository deletes an empty repository, or with force one and all
// its images.
func (s *Service) DeleteRepository(ctx context.Context, in *ecrtypes.DeleteRepositoryRequest) (*ecrtypes.DeleteRepositoryResponse, error) {
	var rec *state.Repository
	_, err := s.store.Update(ctx, func(tx store.Tx) error {
		var err error
		rec, err = s.repository(tx, in.RegistryId, in.RepositoryName)
		if err != nil {
			return err
		}
		if !in.Force {
			kvs, err := tx.List(state.ImagesRepoPrefix(in.RepositoryName), "", 1)
			if err != nil {
				return err
			}
			if len(kvs) > 0 {
				return ecrtypes.NewRepositoryNotEmptyException("The repository with name '%s' in registry with id '%s' cannot be deleted because it still contains images", in.RepositoryName, s.account)
			}
		}
		if err := registry.PurgeRepository(tx, in.RepositoryName); err != nil {
			return err
		}
		return tx.Delete(state.RepositoryKey(in.RepositoryName))
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("repository deleted", "repository", in.RepositoryName, "force", in.Force)
	return &ecrtypes.DeleteRepositoryResponse{Repository: &rec.Repository}, nil
}

// PutImageTagMutability changes a repository's tag mutability setting.
func (s *Service) PutImageTagMutability(ctx context.Context, in *ecrtypes.PutImageTagMutabilityRequest) (*ecrtypes.PutImageTagMutabilityResponse, error) {
	if in.ImageTagMutability == "" {
		return nil, invalidParam("Invalid parameter at 'imageTagMutability': it is required")
	}
	m, filters, err := checkMutability(in.ImageTagMutability, in.ImageTagMutabilityExclusionFilters)
	if err != nil {
		return nil, err
	}
	rec, err := s.updateRepository(ctx, in.RegistryId, in.RepositoryName, func(r *state.Repository) error {
		r.ImageTagMutability, r.ImageTagMutabilityExclusionFilters = m, filters
		return nil
	})
	if err != nil {
		return nil, err
	}
	if filters == nil {
		filters = []ecrtypes.ImageTagMutabilityExclusionFilter{}
	}
	return &ecrtypes.PutImageTagMutabilityResponse{
		RegistryId: rec.RegistryId, RepositoryName: rec.RepositoryName,
		ImageTagMutability: m, ImageTagMutabilityExclusionFilters: filters,
	}, nil
}

// PutImageScanningConfiguration records a repository's scan-on-push
// setting. Berth does not scan images; the setting is kept and reported.
func (s *Service) PutImageScanningConfiguration(ctx context.Context, in *ecrtypes.PutImageScanningConfigurationRequest) (*ecrtypes.PutImageScanningConfigurationResponse, error) {
	if in.ImageScanningConfiguration == nil {
		return nil, invalidParam("Invalid parameter at 'imageScanningConfiguration': it is required")
	}
	rec, err := s.updateRepository(ctx, in.RegistryId, in.RepositoryName, func(r *state.Repository) error {
		r.ImageScanningConfiguration = in.ImageScanningConfiguration
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ecrtypes.PutImageScanningConfigurationResponse{
		RegistryId: rec.RegistryId, RepositoryName: rec.RepositoryName,
		ImageScanningConfiguration: rec.ImageScanningConfiguration,
	}, nil
}

// DescribeRegistry describes Berth's one registry: no replication.
func (s *Service) DescribeRegistry(context.Context, *ecrtypes.DescribeRegistryRequest) (*ecrtypes.DescribeRegistryResponse, error) {
	return &ecrtypes.DescribeRegistryResponse{
		RegistryId:               s.account,
		ReplicationConfiguration: &ecrtypes.ReplicationConfiguration{Rules: []ecrtypes.ReplicationRule{}},
	}, nil
}
