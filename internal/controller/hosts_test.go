package controller

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHostsFileKeepsItsBlockOnly: Set writes one marked block, replaces it
// in place on the next Set, leaves the other lines and another Berth's
// block alone, and Clear removes it.
func TestHostsFileKeepsItsBlockOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts")
	orig := "127.0.0.1 localhost\n# BEGIN berth load balancers /other\n127.0.9.9\tother.elb.berth.internal\n# END berth load balancers /other\n::1 localhost\n"
	if err := os.WriteFile(path, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	h := &HostsFile{Path: path, Owner: "/mine"}
	if err := h.Set(map[string]string{"b.elb.berth.internal": "127.0.1.2", "a.elb.berth.internal": "127.0.1.1"}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want := orig + "# BEGIN berth load balancers /mine\n127.0.1.1\ta.elb.berth.internal\n127.0.1.2\tb.elb.berth.internal\n# END berth load balancers /mine\n"
	if string(got) != want {
		t.Fatalf("after Set:\n%s\nwant:\n%s", got, want)
	}
	if err := h.Set(map[string]string{"c.elb.berth.internal": "127.0.1.3"}); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(path)
	if strings.Contains(string(got), "a.elb") || !strings.Contains(string(got), "127.0.1.3\tc.elb.berth.internal") || !strings.Contains(string(got), "other.elb") {
		t.Fatalf("after a second Set:\n%s", got)
	}
	if err := h.Clear(); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(path)
	if string(got) != orig {
		t.Fatalf("after Clear:\n%s\nwant:\n%s", got, orig)
	}
}

func TestSplitTargetAndGroupID(t *testing.T) {
	if id, port, ok := splitTarget("10.0.0.5:8080"); !ok || id != "10.0.0.5" || port != 8080 {
		t.Fatalf("splitTarget = %q %d %v", id, port, ok)
	}
	if _, _, ok := splitTarget("i-0abc"); ok {
		t.Fatal("a target without a port split")
	}
	if id, ok := targetGroupID("arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/0123456789abcdef"); !ok || id != "0123456789abcdef" {
		t.Fatalf("targetGroupID = %q %v", id, ok)
	}
	if name, id, ok := targetGroupRef("arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/0123456789abcdef"); !ok || name != "web" || id != "0123456789abcdef" {
		t.Fatalf("targetGroupRef = %q %q %v", name, id, ok)
	}
}
