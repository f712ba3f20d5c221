package lb

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// Procs is the GOMAXPROCS for a process that serves load balancers on a
// host where the Go runtime would run n threads at once (its default,
// runtime.GOMAXPROCS(0): the CPUs it may use): n plus twice n, at most n
// plus 16. SetProcs applies it.
//
// The load balancer shares its cores with the processes it proxies for:
// the tasks, and on one machine the clients too. Every write that wakes
// one of them tends to get the writing thread preempted, and while it
// waits in the kernel's run queue its P's goroutines wait with it (85 µs
// on average on a 2-core VM at 64 connections, against 26 µs for the
// nginx workers it proxied to), and the cores go idle for 5% of the time
// although there is work. With more Ps than cores another thread runs
// those goroutines: bench/lb measures 1.15x to 1.2x the throughput of
// GOMAXPROCS=n on 2 cores (docs/benchmarks.md). A P beyond the cores
// costs little where they are not busy. The cap bounds the scheduler's
// per-P work on large hosts, where this was not measured.
func Procs(n int) int {
	return n + min(2*n, 16)
}

// SetProcs sets the process's GOMAXPROCS to Procs of the runtime's
// default, and returns the GOMAXPROCS in effect and why. It leaves it
// alone when GOMAXPROCS is set in the environment to a positive number
// (the runtime applied it), and under a CPU quota (a cgroup's cpu.max or
// cpu.cfs_quota_us): there threads beyond the quota are throttled, not
// run, and the runtime's default already follows the quota. berth up,
// berth server and bench/lb call it first thing; setting GOMAXPROCS also
// ends the runtime's own updates of it when CPU limits change.
func SetProcs() (int, string) {
	if n, err := strconv.Atoi(os.Getenv("GOMAXPROCS")); err == nil && n > 0 {
		return runtime.GOMAXPROCS(0), "GOMAXPROCS in the environment"
	}
	if CPUQuota() {
		return runtime.GOMAXPROCS(0), "the runtime's default under the cgroup's CPU quota"
	}
	runtime.GOMAXPROCS(Procs(runtime.GOMAXPROCS(0)))
	return runtime.GOMAXPROCS(0), "3 × the CPUs (lb.Procs)"
}

// CPUQuota reports whether this process runs under a CPU quota (see
// cpuQuota).
func CPUQuota() bool { return cpuQuota("/") }

// cpuQuota reports whether this process's cgroup, or one above it, limits
// its CPU time: cgroup v2's cpu.max other than "max", or v1's
// cpu.cfs_quota_us other than -1. root is the file system's root ("/";
// another directory in tests). What cannot be read counts as no quota.
func cpuQuota(root string) bool {
	data, err := os.ReadFile(filepath.Join(root, "proc/self/cgroup"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		// hierarchy-ID:controllers:path
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		controllers, path := parts[1], parts[2]
		if controllers == "" {
			if limited(filepath.Join(root, "sys/fs/cgroup"), path, "cpu.max", func(v string) bool {
				return v != "" && strings.Fields(v)[0] != "max"
			}) {
				return true
			}
			continue
		}
		if !strings.Contains(","+controllers+",", ",cpu,") {
			continue
		}
		for _, mount := range []string{"sys/fs/cgroup/cpu", "sys/fs/cgroup/cpu,cpuacct"} {
			if limited(filepath.Join(root, mount), path, "cpu.cfs_quota_us", func(v string) bool {
				return v != "" && v != "-1"
			}) {
				return true
			}
		}
	}
	return false
}

// limited reports whether file, read in the cgroup directory path below
// mount or in any directory above it up to mount, says there is a limit.
func limited(mount, path, file string, limit func(string) bool) bool {
	dir := filepath.Join(mount, filepath.Clean("/"+path))
	for {
		if data, err := os.ReadFile(filepath.Join(dir, file)); err == nil && limit(strings.TrimSpace(string(data))) {
			return true
		}
		if dir == mount || len(dir) < len(mount) {
			return false
		}
		dir = filepath.Dir(dir)
	}
}
