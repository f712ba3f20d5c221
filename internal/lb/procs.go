package lb

// Procs is the GOMAXPROCS for a process that serves load balancers on a
// host where the Go runtime would run n threads at once (its default,
// runtime.GOMAXPROCS(0): the CPUs it may use): n plus twice n, at most n
// plus 16. berth up and berth server set it unless GOMAXPROCS is set.
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
