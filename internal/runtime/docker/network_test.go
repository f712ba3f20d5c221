package docker_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/runtime"
)

// get fetches url and returns the body of a 200 answer.
func get(url string) (string, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), nil
}

func TestPortsAndAddress(t *testing.T) {
	h := newHarness(t)
	spec := h.spec("web", "serve", "-name", "dyn")
	spec.Env = []string{"APP_COLOUR=blue"}
	spec.PortBindings = []runtime.PortBinding{
		// A dynamic host port on IPv4: with no host IP, Docker 20.10 may give
		// IPv4 and IPv6 different port numbers (both are then reported).
		{ContainerPort: 8080, Protocol: "tcp", HostIP: "0.0.0.0"},
		{ContainerPort: 8080, Protocol: "udp", HostIP: "127.0.0.1"}, // same number, other protocol
	}
	id := h.run(spec)
	st, err := h.rt.Inspect(h.ctx, id)
	if err != nil {
		t.Fatal(err)
	}

	if len(st.Ports) != 2 {
		t.Fatalf("Ports = %+v, want one tcp and one udp binding", st.Ports)
	}
	tcp, udp := st.Ports[0], st.Ports[1]
	if tcp.ContainerPort != 8080 || tcp.Protocol != "tcp" || tcp.HostPort == 0 || tcp.HostIP != "0.0.0.0" {
		t.Errorf("tcp binding %+v", tcp)
	}
	if udp.ContainerPort != 8080 || udp.Protocol != "udp" || udp.HostPort == 0 || udp.HostIP != "127.0.0.1" {
		t.Errorf("udp binding %+v", udp)
	}

	ip, err := netip.ParseAddr(st.IPAddress)
	if err != nil || !ip.Is4() || ip.IsLoopback() {
		t.Fatalf("IPAddress %q is not a bridge address", st.IPAddress)
	}

	// The dynamic host port reaches the application; so does the bridge
	// address, and both reach the same container.
	for _, url := range []string{
		fmt.Sprintf("http://127.0.0.1:%d/", tcp.HostPort),
		fmt.Sprintf("http://%s:8080/", st.IPAddress),
	} {
		var body string
		h.waitFor("GET "+url, 10*time.Second, func() (bool, error) {
			body, err = get(url)
			return err == nil, nil
		})
		var got struct {
			Name  string
			Env   map[string]string
			Addrs []string
		}
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("GET %s: %v in %q", url, err, body)
		}
		if got.Name != "dyn" || got.Env["APP_COLOUR"] != "blue" || len(got.Addrs) == 0 || got.Addrs[0] != st.IPAddress {
			t.Errorf("GET %s = %+v; want name dyn, APP_COLOUR blue, address %s", url, got, st.IPAddress)
		}
	}

	// Once stopped, nothing is bound any more.
	if err := h.rt.Stop(h.ctx, id, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	st, err = h.rt.Inspect(h.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Ports) != 0 || st.IPAddress != "" {
		t.Errorf("after Stop: ports %+v, address %q; want none", st.Ports, st.IPAddress)
	}
}

func TestFixedHostPort(t *testing.T) {
	h := newHarness(t)
	port := freeFixedPort(t)

	spec := h.spec("web", "serve")
	spec.PortBindings = []runtime.PortBinding{{ContainerPort: 8080, Protocol: "tcp", HostPort: port}}
	id := h.run(spec)
	st, err := h.rt.Inspect(h.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Ports) != 1 || st.Ports[0].HostPort != port {
		t.Fatalf("Ports = %+v, want host port %d", st.Ports, port)
	}
	h.waitFor("GET /health", 10*time.Second, func() (bool, error) {
		_, err := get(fmt.Sprintf("http://127.0.0.1:%d/health", port))
		return err == nil, nil
	})
}

func TestJoinNetworkNamespace(t *testing.T) {
	h := newHarness(t)
	pause := h.run(h.spec("pause", "serve"))
	owner, err := h.rt.Inspect(h.ctx, pause)
	if err != nil {
		t.Fatal(err)
	}

	// A container in the namespace sees the owner's address as its own...
	ipSpec := h.spec("ip", "ip")
	ipSpec.NetworkMode = "container:" + pause
	st, out := h.runToExit(ipSpec)
	if st.ExitCode != 0 || strings.TrimSpace(out) != owner.IPAddress {
		t.Errorf("joined container: exit %d, addresses %q; want %q", st.ExitCode, out, owner.IPAddress)
	}
	// ...and Inspect reports it too, though the engine lists no network for it.
	if st.IPAddress != owner.IPAddress {
		t.Errorf("Inspect of the joined container: IPAddress %q, want %q", st.IPAddress, owner.IPAddress)
	}

	// localhost is shared: the owner's server answers on it.
	check := h.spec("check", "check", "http://localhost:8080/health")
	check.NetworkMode = "container:" + pause
	var code int
	h.waitFor("check over the shared localhost", 10*time.Second, func() (bool, error) {
		id, err := h.rt.Create(h.ctx, func() runtime.ContainerSpec { c := check; c.Name = ""; return c }())
		if err != nil {
			return false, err
		}
		defer h.rt.Remove(h.ctx, id)
		if err := h.rt.Start(h.ctx, id); err != nil {
			return false, err
		}
		code = h.waitExit(id).ExitCode
		return code == 0, nil
	})
}

func TestHostAndNoneNetworks(t *testing.T) {
	h := newHarness(t)
	for _, mode := range []string{"host", "none"} {
		spec := h.spec(mode, "ip")
		spec.NetworkMode = mode
		st, out := h.runToExit(spec)
		if st.ExitCode != 0 || st.IPAddress != "" {
			t.Errorf("%s: exit %d, IPAddress %q; want 0 and none", mode, st.ExitCode, st.IPAddress)
		}
		if mode == "none" && strings.TrimSpace(out) != "" {
			t.Errorf("none: addresses %q, want none", out)
		}
	}
}

// freeFixedPort finds a free TCP port below the kernel's ephemeral range
// (where the engine picks dynamic ports), so that no concurrently created
// container can take it between the check and the test's bind.
func freeFixedPort(t *testing.T) uint16 {
	t.Helper()
	start := 20000 + int(time.Now().UnixNano()%5000)
	for p := start; p < start+5000; p++ {
		ln, err := net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", p))
		if err == nil {
			ln.Close()
			return uint16(p)
		}
	}
	t.Fatal("no free port in 20000-29999")
	return 0
}
