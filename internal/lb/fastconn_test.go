package lb

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection, the first
// wrapped by fast.
func tcpPair(t *testing.T) (*fastConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	fc, ok := fast(c).(*fastConn)
	if !ok {
		t.Fatalf("fast(%T) is not a fastConn", c)
	}
	t.Cleanup(func() { _ = fc.Close(); _ = peer.Close() })
	return fc, peer.(*net.TCPConn)
}

func TestFastConnOnlyWrapsTCP(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := fast(a); got != a {
		t.Fatalf("fast(pipe) = %T, want the pipe itself", got)
	}
}

func TestFastConnRoundTrip(t *testing.T) {
	fc, peer := tcpPair(t)
	if _, err := peer.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := fc.Read(buf) // parks until the bytes arrive, or finds them there
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("Read = %q, %v; want ping", buf[:n], err)
	}
	if n, err := fc.Read(nil); n != 0 || err != nil {
		t.Fatalf("Read(empty) = %d, %v; want 0, nil", n, err)
	}
	if _, err := fc.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(peer, buf[:4]); err != nil || string(buf[:4]) != "pong" {
		t.Fatalf("peer read %q, %v; want pong", buf[:4], err)
	}
}

// A write larger than the socket buffers and than maxRawIO parks while
// the peer is slow to read, and arrives whole and in order.
func TestFastConnLargeWriteParksAndArrivesWhole(t *testing.T) {
	fc, peer := tcpPair(t)
	_ = fc.SetWriteBuffer(16 << 10)
	_ = peer.SetReadBuffer(16 << 10)
	data := make([]byte, 8<<20)
	_, _ = rand.Read(data)
	got := make(chan []byte, 1)
	go func() {
		time.Sleep(100 * time.Millisecond) // the writer fills the buffers and parks
		b, _ := io.ReadAll(io.LimitReader(peer, int64(len(data))))
		got <- b
	}()
	n, err := fc.Write(data)
	if err != nil || n != len(data) {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(data))
	}
	if b := <-got; !bytes.Equal(b, data) {
		t.Fatalf("peer read %d bytes, not the %d written", len(b), len(data))
	}
}

// Reads return at most maxRawIO bytes per call, and all of a large stream.
func TestFastConnReadsLargeStream(t *testing.T) {
	fc, peer := tcpPair(t)
	data := make([]byte, 4<<20)
	_, _ = rand.Read(data)
	go func() { _, _ = peer.Write(data); _ = peer.CloseWrite() }()
	var out bytes.Buffer
	buf := make([]byte, 2*maxRawIO)
	for {
		n, err := fc.Read(buf)
		if n > maxRawIO {
			t.Fatalf("one Read returned %d bytes, over maxRawIO", n)
		}
		out.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("read %d bytes, not the %d sent", out.Len(), len(data))
	}
}

func TestFastConnEOF(t *testing.T) {
	fc, peer := tcpPair(t)
	_ = peer.Close()
	if n, err := fc.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("Read after the peer closed = %d, %v; want 0, EOF", n, err)
	}
}

func TestFastConnDeadline(t *testing.T) {
	fc, _ := tcpPair(t)
	_ = fc.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	start := time.Now()
	_, err := fc.Read(make([]byte, 8))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline = %v; want a timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the deadline took %v to fire", d)
	}
	if statusFor(err) != 504 {
		t.Fatalf("statusFor(%v) = %d, want 504", err, statusFor(err))
	}
}

// A write to a connection the peer reset fails with the errno net.TCPConn
// would report (so the pool's retry logic recognises a stale connection),
// and no SIGPIPE kills the process.
func TestFastConnWriteAfterReset(t *testing.T) {
	fc, peer := tcpPair(t)
	_ = peer.SetLinger(0)
	_ = peer.Close() // RST
	time.Sleep(50 * time.Millisecond)
	var err error
	for range 10 {
		if _, err = fc.Write([]byte("x")); err != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("Write after a reset = %v; want ECONNRESET or EPIPE", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "write" || !isStale(err) {
		t.Fatalf("Write after a reset = %#v; want a stale write *net.OpError", err)
	}
}

func TestFastConnClosed(t *testing.T) {
	fc, _ := tcpPair(t)
	_ = fc.Close()
	if _, err := fc.Read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close = %v; want net.ErrClosed", err)
	}
	if _, err := fc.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close = %v; want net.ErrClosed", err)
	}
}

// TestFastConnDoesNotAllocate checks that a read and a write that find the
// socket ready allocate nothing: the proxy makes several per request.
func TestFastConnDoesNotAllocate(t *testing.T) {
	if !rawSyscalls {
		t.Skip("measured where the load balancer makes raw system calls (rawio.go); race detector builds allocate in it")
	}
	fc, peer := tcpPair(t)
	msg := []byte("GET / HTTP/1.1\r\n\r\n")
	buf := make([]byte, 64)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := fc.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(peer, buf[:len(msg)]); err != nil {
			t.Fatal(err)
		}
		if _, err := peer.Write(msg); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < len(msg); {
			n, err := fc.Read(buf[got:len(msg)])
			if err != nil {
				t.Fatal(err)
			}
			got += n
		}
	})
	if allocs != 0 {
		t.Fatalf("a write and a read on a fastConn allocate %v times, want 0", allocs)
	}
}
