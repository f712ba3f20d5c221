package docker

import (
	"context"
	"errors"
	"fmt"

	"github.com/moby/moby/client"

	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/runtime"
)

// CreateVolume makes a named volume with the given driver ("" means
// "local"), driver options and labels. Creating a volume that exists is not
// an error (the engine keeps the existing one as it is).
func (r *Runtime) CreateVolume(ctx context.Context, name, driver string, opts, labels map[string]string) error {
	_, err := r.c.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name, Driver: driver, DriverOpts: opts, Labels: labels})
	return engineError(ctx, fmt.Sprintf("create volume %q", name), err, errdefs.ErrAlreadyExists)
}

// RemoveVolume deletes a named volume; a missing one is not an error. A
// volume still used by a container is reported around
// errdefs.ErrFailedPrecondition.
func (r *Runtime) RemoveVolume(ctx context.Context, name string) error {
	_, err := r.c.VolumeRemove(ctx, name, client.VolumeRemoveOptions{})
	err = engineError(ctx, fmt.Sprintf("remove volume %q", name), err, errdefs.ErrFailedPrecondition)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	return err
}

// Info describes the engine's host.
func (r *Runtime) Info(ctx context.Context) (runtime.HostInfo, error) {
	res, err := r.c.Info(ctx, client.InfoOptions{})
	if err != nil {
		return runtime.HostInfo{}, engineError(ctx, "engine info", err, errdefs.ErrFailedPrecondition)
	}
	i := res.Info
	return runtime.HostInfo{
		CPUs:          i.NCPU,
		MemoryBytes:   i.MemTotal,
		EngineVersion: i.ServerVersion,
		OS:            i.OSType,
		Arch:          goArch(i.Architecture),
		Hostname:      i.Name,
	}, nil
}

// goArch maps the engine's architecture (uname -m) to Go's names, which the
// rest of Berth and image platforms use.
func goArch(a string) string {
	switch a {
	case "x86_64":
		return "amd64"
	case "aarch64":
		return "arm64"
	case "armv7l", "armv6l":
		return "arm"
	case "i386", "i686":
		return "386"
	}
	return a
}
