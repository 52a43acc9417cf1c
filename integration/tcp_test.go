//go:build linux

package integration

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"
)

// tcpProxy starts proxynow with one TCP entrypoint "in" routed to a service
// with the given backends and extra entrypoint/service attributes.
func tcpProxy(t *testing.T, epExtra, svcExtra string, backends ...string) *proc {
	t.Helper()
	var bs string
	for _, b := range backends {
		bs += fmt.Sprintf("  backend %q {}\n", b)
	}
	return startProxy(t, hcl(`
entrypoint "in" {
  address = "127.0.0.1:0"
%s
}
tcp_route "r" {
  entrypoints = ["in"]
  service     = "s"
}
service "s" {
%s
%s}
`, epExtra, svcExtra, bs))
}

// randReader is a fast stream of random bytes.
func randReader() io.Reader {
	var seed [32]byte
	_, _ = rand.Read(seed[:])
	return mrand.NewChaCha8(seed)
}

// sendHashed writes n random bytes to w and returns their sha256.
func sendHashed(w io.Writer, n int64) ([]byte, error) {
	h := sha256.New()
	_, err := io.CopyN(io.MultiWriter(w, h), randReader(), n)
	return h.Sum(nil), err
}

// recvHashed reads r to EOF and returns the byte count and sha256.
func recvHashed(r io.Reader) (int64, []byte, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return n, h.Sum(nil), err
}

func TestTCPIntegrity(t *testing.T) {
	const size = 64 << 20

	// The backend sends its own 64 MiB while it reads the client's, so both
	// directions are in flight at once.
	type result struct {
		recvN          int64
		recvSum, sent  []byte
		recvErr, sendE error
	}
	results := make(chan result, 1)
	be := startTCPBackend(t, func(_ *tcpBackend, c *net.TCPConn) {
		_ = c.SetDeadline(time.Now().Add(2 * ioTimeout))
		var r result
		var wg sync.WaitGroup
		wg.Go(func() {
			r.sent, r.sendE = sendHashed(c, size)
			_ = c.CloseWrite()
		})
		r.recvN, r.recvSum, r.recvErr = recvHashed(c)
		wg.Wait()
		results <- r
	})
	p := tcpProxy(t, "", "", be.addr)

	c := dialTCP(t, p.addr("in"))
	_ = c.SetDeadline(time.Now().Add(2 * ioTimeout))
	var sent []byte
	var sendErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		sent, sendErr = sendHashed(c, size)
		_ = c.CloseWrite()
	})
	n, got, err := recvHashed(c)
	wg.Wait()
	if sendErr != nil {
		t.Fatalf("client send: %v", sendErr)
	}
	if err != nil {
		t.Fatalf("client receive after %d bytes: %v", n, err)
	}
	var r result
	select {
	case r = <-results:
	case <-time.After(ioTimeout):
		t.Fatal("backend did not finish")
	}
	if r.sendE != nil || r.recvErr != nil {
		t.Fatalf("backend: send err %v, receive err %v", r.sendE, r.recvErr)
	}
	if r.recvN != size || !bytes.Equal(r.recvSum, sent) {
		t.Errorf("client->backend: backend got %d bytes sha256 %x, client sent %d bytes sha256 %x", r.recvN, r.recvSum, size, sent)
	}
	if n != size || !bytes.Equal(got, r.sent) {
		t.Errorf("backend->client: client got %d bytes sha256 %x, backend sent %d bytes sha256 %x", n, got, size, r.sent)
	}
}

func TestTCPHalfClose(t *testing.T) {
	const reqSize, replySize = 256 << 10, 1 << 20
	reply := bytes.Repeat([]byte("final-reply."), replySize/12)

	sawEOF := make(chan int64, 1)
	be := startTCPBackend(t, func(b *tcpBackend, c *net.TCPConn) {
		_ = c.SetDeadline(time.Now().Add(ioTimeout))
		n, _ := io.Copy(io.Discard, c) // until the client's FIN
		sawEOF <- n
		// Give a proxy that wrongly tears down on the first FIN time to do it.
		b.sleep(200 * time.Millisecond)
		_, _ = c.Write(reply)
		// Returning closes the connection: the client must then see EOF.
	})
	p := tcpProxy(t, "", "", be.addr)

	c := dialTCP(t, p.addr("in"))
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := c.Write(bytes.Repeat([]byte{'q'}, reqSize)); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-sawEOF:
		if n != reqSize {
			t.Fatalf("backend read %d bytes before EOF, want %d", n, reqSize)
		}
	case <-time.After(ioTimeout):
		t.Fatal("backend never saw EOF after the client's CloseWrite")
	}
	got, err := io.ReadAll(c) // nil error means a clean EOF
	if err != nil {
		t.Fatalf("reading the reply after CloseWrite: %v (got %d of %d bytes)", err, len(got), len(reply))
	}
	if !bytes.Equal(got, reply) {
		t.Fatalf("reply: got %d bytes, want %d intact bytes", len(got), len(reply))
	}
}

func TestMaxConnections(t *testing.T) {
	be := startTCPBackend(t, echo)
	p := tcpProxy(t, "  max_connections = 2", "", be.addr)
	addr := p.addr("in")

	var held []*net.TCPConn
	for i := range 2 {
		c := dialTCP(t, addr)
		if got, err := roundTrip(c, "hi"); err != nil || got != "hi" {
			t.Fatalf("connection %d within the limit: got %q, %v", i+1, got, err)
		}
		held = append(held, c)
	}

	// The kernel completes the handshake; proxynow must close it.
	el, got := dialExpectClosed(t, addr, []byte("over"), 2*time.Second)
	if len(got) != 0 {
		t.Errorf("third connection got data %q, want none", got)
	}
	if el > time.Second {
		t.Errorf("third connection closed after %v, want at once", el)
	}
	if n := be.accepted.Load(); n != 2 {
		t.Errorf("backend accepted %d connections, want 2: the refused one must not be dialed", n)
	}

	// Freeing a slot lets a new connection through.
	held[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var got string
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			got, err = roundTrip(c, "again")
			c.Close()
			if err == nil && got == "again" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection accepted after a slot was freed (last: %q, %v)", got, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got, err := roundTrip(held[1], "still"); err != nil || got != "still" {
		t.Errorf("held connection broken: %q, %v", got, err)
	}
}
