package e2e

import (
	"testing"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/simagent"
)

// simAgent is a simulated agent (internal/simagent) bound to a test.
type simAgent struct {
	*simagent.Agent
	t testing.TB
}

// startSimAgent registers an instance with cpu units and memory MiB and
// runs its loop until the test ends.
func startSimAgent(t testing.TB, b *berth, cluster string, cpu, mem int, attrs map[string]string) *simAgent {
	t.Helper()
	a, err := simagent.Start(ctx(t), simagent.Options{Endpoint: b.endpoint, JoinToken: b.cp.JoinToken(),
		Cluster: cluster, CPU: cpu, MemoryMiB: mem, Attributes: attrs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	return &simAgent{Agent: a, t: t}
}

// report sends one hand-made task report (for stale/duplicate tests).
func (a *simAgent) report(tr agentapi.TaskReport) agentapi.ReportResponse {
	a.t.Helper()
	out, err := a.Report(ctx(a.t), tr)
	if err != nil {
		a.t.Fatal(err)
	}
	return out
}

func (a *simAgent) crash(taskArn string) {
	a.t.Helper()
	if err := a.Crash(ctx(a.t), taskArn); err != nil {
		a.t.Fatal(err)
	}
}

func (a *simAgent) arn(b *berth, cluster string) string {
	return "arn:aws:ecs:us-east-1:000000000000:container-instance/" + cluster + "/" + a.ID
}
