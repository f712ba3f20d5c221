package agent

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	goruntime "runtime"

	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/runtime"
)

// PauseImager makes the image of awsvpc pause containers present on the
// engine. An awsvpc task's containers join the network namespace of a
// per-task pause container, which must exist on hosts that cannot pull.
type PauseImager interface {
	// EnsurePauseImage makes the image present and returns its reference.
	EnsurePauseImage(ctx context.Context) (string, error)
}

// ImageLoader is the optional runtime capability of loading a "docker save"
// archive; the agent loads its own pause image with it.
// *docker.Runtime implements it.
type ImageLoader interface {
	// LoadImage loads the images of a "docker save" archive with their tags.
	LoadImage(ctx context.Context, archive io.Reader) error
}

// ImageIDer is the optional runtime capability of naming a local image's
// id ("sha256:..."), which the task metadata endpoint shows as ImageID.
// *docker.Runtime implements it.
type ImageIDer interface {
	// ImageID returns the engine's id of a local image.
	ImageID(ctx context.Context, ref string) (string, error)
}

// ImageDigester is the optional runtime capability of naming the manifest
// digest a local image was pulled by, which DescribeTasks shows as the
// container's imageDigest. *docker.Runtime implements it.
type ImageDigester interface {
	// ImageDigest returns "sha256:..." of the manifest ref was pulled as,
	// or an error when the engine has no digest for it (a local build).
	ImageDigest(ctx context.Context, ref string) (string, error)
}

// runtimePause is the default PauseImager: the image is used if present,
// else built from pauseBinary and loaded when the runtime is an ImageLoader.
type runtimePause struct {
	rt    runtime.Runtime
	image string
	arch  string
}

func (p runtimePause) EnsurePauseImage(ctx context.Context) (string, error) {
	ok, err := p.rt.ImagePresent(ctx, p.image)
	if err != nil {
		return "", err
	}
	if ok {
		return p.image, nil
	}
	l, isLoader := p.rt.(ImageLoader)
	if !isLoader {
		return "", fmt.Errorf("pause image %q is not present and the container runtime cannot load images: %w", p.image, errdefs.ErrFailedPrecondition)
	}
	archive, err := pauseArchive(p.image, p.arch)
	if err != nil {
		return "", err
	}
	if err := l.LoadImage(ctx, bytes.NewReader(archive)); err != nil {
		return "", fmt.Errorf("load pause image %q: %w", p.image, err)
	}
	return p.image, nil
}

// canProvide reports whether the pause image can be made present, for the
// task-eni capability: it is present, or the runtime can load it.
func (p runtimePause) canProvide(ctx context.Context) bool {
	if _, ok := p.rt.(ImageLoader); ok {
		_, err := pauseBinary(p.arch)
		return err == nil
	}
	ok, err := p.rt.ImagePresent(ctx, p.image)
	return err == nil && ok
}

// pauseBinary returns a minimal static Linux ELF executable for arch (Go
// names) that blocks in a system call forever: pause(2) on amd64, ppoll(2)
// with no descriptors and no timeout on arm64, which has no pause. It is
// written out byte by byte so that the agent needs no toolchain or
// registry to make its pause image.
func pauseBinary(arch string) ([]byte, error) {
	var machine uint16
	var code []byte
	switch arch {
	case "amd64":
		machine = 0x3e
		code = []byte{
			0xb8, 0x22, 0x00, 0x00, 0x00, // mov eax, 34 (pause)
			0x0f, 0x05, // syscall
			0xeb, 0xf7, // jmp back to the mov
		}
	case "arm64":
		machine = 0xb7
		for _, ins := range []uint32{
			0xd2800000, // mov x0, #0 (fds)
			0xd2800001, // mov x1, #0 (nfds)
			0xd2800002, // mov x2, #0 (no timeout)
			0xd2800003, // mov x3, #0 (no signal mask)
			0xd2800928, // mov x8, #73 (ppoll)
			0xd4000001, // svc #0
			0x17fffffa, // b back to the first mov
		} {
			code = binary.LittleEndian.AppendUint32(code, ins)
		}
	default:
		return nil, fmt.Errorf("no pause binary for architecture %q: %w", arch, errdefs.ErrFailedPrecondition)
	}
	const base, ehsize, phsize = 0x400000, 64, 56
	size := uint64(ehsize + phsize + len(code))
	var b bytes.Buffer
	le := binary.LittleEndian
	// ELF header.
	b.Write([]byte{0x7f, 'E', 'L', 'F', 2 /* 64-bit */, 1 /* little endian */, 1 /* version */, 0 /* SysV ABI */})
	b.Write(make([]byte, 8))
	w := func(v any) { _ = binary.Write(&b, le, v) }
	w(uint16(2))                      // e_type: executable
	w(machine)                        // e_machine
	w(uint32(1))                      // e_version
	w(uint64(base + ehsize + phsize)) // e_entry
	w(uint64(ehsize))                 // e_phoff
	w(uint64(0))                      // e_shoff
	w(uint32(0))                      // e_flags
	w(uint16(ehsize))                 // e_ehsize
	w(uint16(phsize))                 // e_phentsize
	w(uint16(1))                      // e_phnum
	w(uint16(0))                      // e_shentsize
	w(uint16(0))                      // e_shnum
	w(uint16(0))                      // e_shstrndx
	// One loadable, readable and executable segment: the whole file.
	w(uint32(1))      // p_type: PT_LOAD
	w(uint32(5))      // p_flags: R+X
	w(uint64(0))      // p_offset
	w(uint64(base))   // p_vaddr
	w(uint64(base))   // p_paddr
	w(size)           // p_filesz
	w(size)           // p_memsz
	w(uint64(0x1000)) // p_align
	b.Write(code)
	return b.Bytes(), nil
}

// pauseArchive returns a "docker save" archive of a one-layer image tagged
// ref whose entrypoint is /pause.
func pauseArchive(ref, arch string) ([]byte, error) {
	bin, err := pauseBinary(arch)
	if err != nil {
		return nil, err
	}
	var layer bytes.Buffer
	lw := tar.NewWriter(&layer)
	if err := lw.WriteHeader(&tar.Header{Name: "pause", Mode: 0o755, Size: int64(len(bin)), Typeflag: tar.TypeReg}); err != nil {
		return nil, err
	}
	lw.Write(bin)
	if err := lw.Close(); err != nil {
		return nil, err
	}
	layerSum := sha256.Sum256(layer.Bytes())
	layerHex := hex.EncodeToString(layerSum[:])
	config, err := json.Marshal(map[string]any{
		"architecture": arch,
		"os":           "linux",
		"config":       map[string]any{"Entrypoint": []string{"/pause"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + layerHex}},
	})
	if err != nil {
		return nil, err
	}
	configSum := sha256.Sum256(config)
	configName := hex.EncodeToString(configSum[:]) + ".json"
	layerName := layerHex + "/layer.tar"
	manifest, err := json.Marshal([]map[string]any{{
		"Config":   configName,
		"RepoTags": []string{ref},
		"Layers":   []string{layerName},
	}})
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for _, f := range []struct {
		name string
		data []byte
	}{{configName, config}, {layerName, layer.Bytes()}, {"manifest.json", manifest}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// hostArch returns the engine's architecture, or the agent's own.
func hostArch(info runtime.HostInfo) string {
	switch info.Arch {
	case "amd64", "x86_64":
		return "amd64"
	case "arm64", "aarch64":
		return "arm64"
	case "":
		return goruntime.GOARCH
	}
	return info.Arch
}
