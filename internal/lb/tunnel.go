package lb

import (
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// tunnel completes a protocol upgrade (WebSocket) the target accepted:
// it sends the 101 answer with the headers in w.Header() to the client on
// its hijacked connection and copies bytes between it and back until
// either side closes, the connection idles for the load balancer's idle
// timeout, or the target finishes draining.
func tunnel(w http.ResponseWriter, back io.ReadWriteCloser, rt *routes, t *target) {
	defer back.Close()
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// HTTP/2 cannot hijack; an upgrade never reaches here over it.
		writeError(w, http.StatusBadGateway)
		return
	}
	defer conn.Close()
	if !t.addTunnel(conn) {
		return
	}
	defer t.removeTunnel(conn)

	_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	_ = w.Header().Write(brw)
	_, _ = brw.WriteString("\r\n")
	if err := brw.Flush(); err != nil {
		return
	}

	var last atomic.Int64
	now := func() int64 { return time.Now().UnixNano() }
	last.Store(now())
	var once sync.Once
	closeBoth := func() { once.Do(func() { _ = conn.Close(); _ = back.Close() }) }
	idle := rt.lb.idleTimeout
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		timer := time.NewTimer(idle)
		defer timer.Stop()
		for {
			select {
			case <-stop:
				return
			case <-timer.C:
			}
			if quiet := time.Duration(now() - last.Load()); quiet < idle {
				timer.Reset(idle - quiet)
				continue
			}
			closeBoth()
			return
		}
	}()

	done := make(chan struct{}, 2)
	pipe := func(dst io.Writer, src io.Reader) {
		bp := bufPool.Get().(*[]byte)
		defer bufPool.Put(bp)
		buf := *bp
		for {
			n, err := src.Read(buf)
			if n > 0 {
				last.Store(now())
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		closeBoth()
		done <- struct{}{}
	}
	// brw.Reader holds whatever the client sent after its request.
	go pipe(back, brw.Reader)
	pipe(conn, back)
	<-done
}

// addTunnel registers an upgraded connection of t, to close when t
// finishes draining; it reports false when t already has.
func (t *target) addTunnel(c io.Closer) bool {
	t.g.mu.Lock()
	defer t.g.mu.Unlock()
	if t.drained {
		return false
	}
	if t.tunnels == nil {
		t.tunnels = map[io.Closer]struct{}{}
	}
	t.tunnels[c] = struct{}{}
	return true
}

func (t *target) removeTunnel(c io.Closer) {
	t.g.mu.Lock()
	delete(t.tunnels, c)
	t.g.mu.Unlock()
}
