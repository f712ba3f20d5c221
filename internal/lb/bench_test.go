package lb

import (
	"io"
	"net/http"
	"testing"
)

// BenchmarkProxy measures a GET through a listener against the same
// httptest backend reached directly, one request at a time (the ns/op
// difference is the proxy's added latency) and from parallel clients
// (throughput):
//
//	go test -run '^$' -bench BenchmarkProxy -benchmem ./internal/lb/
func BenchmarkProxy(b *testing.B) {
	body := make([]byte, 128)
	be := newBackendFunc(b, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(body)
	})
	bal := newTestBalancer(b, Config{})
	apply(b, bal, oneListener(targetsOf(be.Listener.Addr().String())...))
	urls := map[string]string{
		"direct": be.URL + "/bench",
		"lb":     baseURL(b, bal, "lb", "l") + "/bench",
	}
	for _, name := range []string{"direct", "lb"} {
		url := urls[name]
		b.Run(name, func(b *testing.B) {
			c := newClient()
			b.ReportAllocs()
			for b.Loop() {
				benchGet(b, c, url)
			}
		})
		b.Run(name+"-parallel", func(b *testing.B) {
			c := newClient()
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					benchGet(b, c, url)
				}
			})
		})
	}
}

func benchGet(b *testing.B, c *http.Client, url string) {
	resp, err := c.Get(url)
	if err != nil {
		b.Error(err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Errorf("status %d", resp.StatusCode)
	}
}
