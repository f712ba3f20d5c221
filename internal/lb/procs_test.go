package lb

import (
	"os"
	"path/filepath"
	"testing"
)

func TestProcs(t *testing.T) {
	for n, want := range map[int]int{1: 3, 2: 6, 4: 12, 8: 24, 16: 32, 64: 80} {
		if got := Procs(n); got != want {
			t.Errorf("Procs(%d) = %d, want %d", n, got, want)
		}
	}
}

// TestCPUQuota reads cgroup v2 and v1 limits from a fake file system.
func TestCPUQuota(t *testing.T) {
	write := func(root, name, content string) {
		t.Helper()
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  bool
	}{
		{"no cgroup file", nil, false},
		{"v2 without a limit", map[string]string{
			"proc/self/cgroup":          "0::/app\n",
			"sys/fs/cgroup/app/cpu.max": "max 100000\n",
			"sys/fs/cgroup/cpu.max":     "max 100000\n",
		}, false},
		{"v2 with a limit", map[string]string{
			"proc/self/cgroup":          "0::/app\n",
			"sys/fs/cgroup/app/cpu.max": "50000 100000\n",
		}, true},
		{"v2 with a limit on a parent", map[string]string{
			"proc/self/cgroup":                "0::/slice/app\n",
			"sys/fs/cgroup/slice/app/cpu.max": "max 100000\n",
			"sys/fs/cgroup/slice/cpu.max":     "200000 100000\n",
		}, true},
		{"v1 without a limit", map[string]string{
			"proc/self/cgroup":                   "4:memory:/x\n1:cpu:/\n0::/\n",
			"sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n",
		}, false},
		{"v1 with a limit", map[string]string{
			"proc/self/cgroup": "3:cpu,cpuacct:/docker/abc\n",
			"sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "150000\n",
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for name, content := range tc.files {
				write(root, name, content)
			}
			if got := cpuQuota(root); got != tc.want {
				t.Fatalf("cpuQuota = %v, want %v", got, tc.want)
			}
		})
	}
}
