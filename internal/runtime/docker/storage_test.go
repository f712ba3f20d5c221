package docker_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthdev/berth/internal/errdefs"
	"github.com/berthdev/berth/internal/runtime"
)

func TestNamedVolumeIsShared(t *testing.T) {
	h := newHarness(t)
	vol := h.volume("data")
	// Creating it again is not an error.
	if err := h.rt.CreateVolume(h.ctx, vol, "local", nil, h.labels()); err != nil {
		t.Errorf("second CreateVolume: %v", err)
	}
	mounts := []runtime.Mount{{Type: "volume", Source: vol, Target: "/data"}}

	writer := h.spec("writer", "write", "/data/greeting", "hello from the writer")
	writer.Mounts = mounts
	if st, out := h.runToExit(writer); st.ExitCode != 0 {
		t.Fatalf("writer exited %d: %s", st.ExitCode, out)
	}

	reader := h.spec("reader", "cat", "/data/greeting")
	reader.Mounts = []runtime.Mount{{Type: "volume", Source: vol, Target: "/data", ReadOnly: true}}
	st, out := h.runToExit(reader)
	if st.ExitCode != 0 || out != "hello from the writer" {
		t.Errorf("reader: exit %d, output %q", st.ExitCode, out)
	}

	// A read-only mount refuses writes.
	ro := h.spec("ro", "write", "/data/other", "x")
	ro.Mounts = reader.Mounts
	if st, _ := h.runToExit(ro); st.ExitCode == 0 {
		t.Error("write to a read-only volume succeeded")
	}

	// A volume in use by a container (even an exited one) cannot go.
	if err := h.rt.RemoveVolume(h.ctx, vol); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("RemoveVolume of a used volume: %v, want ErrFailedPrecondition", err)
	}
	// A missing volume is not an error.
	if err := h.rt.RemoveVolume(h.ctx, h.name("never-created")); err != nil {
		t.Errorf("RemoveVolume of a missing volume: %v", err)
	}
}

func TestBindMount(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	spec := h.spec("bind", "write", "/host/file", "written inside")
	spec.Mounts = []runtime.Mount{{Type: "bind", Source: dir, Target: "/host"}}
	if st, out := h.runToExit(spec); st.ExitCode != 0 {
		t.Fatalf("exit %d: %s", st.ExitCode, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "file"))
	if err != nil || string(b) != "written inside" {
		t.Errorf("host file: %q, %v", b, err)
	}
}

func TestVolumesFrom(t *testing.T) {
	h := newHarness(t)
	// An anonymous volume (a volume mount without a source) lives with its
	// container; Remove deletes it.
	owner := h.spec("owner", "write", "/shared/f", "from the owner")
	owner.Mounts = []runtime.Mount{{Type: "volume", Target: "/shared"}}
	ownerID := h.run(owner)
	if st := h.waitExit(ownerID); st.ExitCode != 0 {
		t.Fatalf("owner exited %d: %s", st.ExitCode, h.logs(ownerID))
	}

	for i, from := range []string{ownerID, ownerID + ":ro"} {
		spec := h.spec(fmt.Sprint("reader", i), "cat", "/shared/f")
		spec.VolumesFrom = []string{from}
		st, out := h.runToExit(spec)
		if st.ExitCode != 0 || out != "from the owner" {
			t.Errorf("volumes from %s: exit %d, output %q", from, st.ExitCode, out)
		}
	}
}

func TestReadonlyRootfs(t *testing.T) {
	h := newHarness(t)
	spec := h.spec("ro", "write", "/tmp/x", "y")
	spec.ReadonlyRootfs = true
	st, out := h.runToExit(spec)
	if st.ExitCode == 0 || !strings.Contains(out, "read-only file system") {
		t.Errorf("write to a read-only root: exit %d, output %q", st.ExitCode, out)
	}
}
