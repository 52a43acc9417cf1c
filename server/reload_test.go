package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// taggedBackend accepts connections concurrently; on each it writes tag
// and a newline, then echoes.
func taggedBackend(t *testing.T, tag string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				fmt.Fprintf(c, "%s\n", tag)
				io.Copy(c, c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// tagConn dials addr and reads the backend's tag line.
func tagConn(t *testing.T, addr string) (net.Conn, *bufio.Reader, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	tag, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("read tag: %v", err)
	}
	return c, br, strings.TrimSpace(tag)
}

// echoes reports whether c still echoes.
func echoes(c net.Conn, br *bufio.Reader) error {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	line, err := br.ReadString('\n')
	if err != nil {
		return err
	}
	if line != "ping\n" {
		return fmt.Errorf("echo %q", line)
	}
	return nil
}

func started(t *testing.T, src string) *Server {
	t.Helper()
	s := newServer(t, parse(t, src))
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func reload(t *testing.T, s *Server, src string) *Changes {
	t.Helper()
	ch, err := s.Reload(parse(t, src))
	if err != nil {
		t.Fatalf("Reload: %v", err)
	}
	return ch
}

const tcpTwoRoutes = `
global { grace_period = "%s" }
entrypoint "a" { address = "127.0.0.1:0" }
entrypoint "b" { address = "127.0.0.1:0" }
tcp_route "ra" {
  entrypoints = ["a"]
  service     = "%s"
}
tcp_route "rb" {
  entrypoints = ["b"]
  service     = "%s"
}
service "one" {
  backend "%s" {}
}
service "two" {
  backend "%s" {}
}
`

// TestReloadKeepsSocketAndUntouchedConnections: a reload that changes one
// route keeps both sockets (same address, and a client dialling in a loop
// all through the reload is never refused), leaves the connection of the
// unchanged route alone, and drains then closes the changed route's.
func TestReloadKeepsSocketAndUntouchedConnections(t *testing.T) {
	one, two := taggedBackend(t, "one"), taggedBackend(t, "two")
	s := started(t, fmt.Sprintf(tcpTwoRoutes, "300ms", "one", "one", one, two))
	addrA, addrB := s.Addr("a").String(), s.Addr("b").String()
	sockA := s.listenerOf("a").tcpLn
	ca, bra, tag := tagConn(t, addrA)
	if tag != "one" {
		t.Fatalf("a: tag %q", tag)
	}
	cb, brb, tag := tagConn(t, addrB)
	if tag != "one" {
		t.Fatalf("b: tag %q", tag)
	}
	poolBefore := s.Pool("one")

	// Dial both addresses in a loop while reloading.
	var refused atomic.Int64
	var dials atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, a := range []string{addrA, addrB} {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.DialTimeout("tcp", a, 5*time.Second)
				if err != nil {
					if errors.Is(err, syscall.ECONNREFUSED) {
						refused.Add(1)
					}
					continue
				}
				dials.Add(1)
				c.Close()
			}
		})
	}
	for i := range 20 {
		svc := []string{"one", "two"}[i%2]
		reload(t, s, fmt.Sprintf(tcpTwoRoutes, "300ms", "one", svc, one, two))
	}
	// End on b -> two.
	ch := reload(t, s, fmt.Sprintf(tcpTwoRoutes, "300ms", "one", "two", one, two))
	close(stop)
	wg.Wait()
	if refused.Load() > 0 {
		t.Fatalf("%d of %d dials refused during reloads", refused.Load(), dials.Load())
	}
	if len(ch.ListenersKept) != 2 || len(ch.ListenersAdded)+len(ch.ListenersRemoved) != 0 {
		t.Fatalf("changes %+v: want both listeners kept", ch)
	}
	if got := s.Addr("a").String(); got != addrA || s.listenerOf("a").tcpLn != sockA {
		t.Fatalf("a's socket replaced (%s, then %s)", addrA, got)
	}
	if s.Pool("one") != poolBefore {
		t.Fatal("pool of the unchanged service was rebuilt")
	}
	// New connections on b go to two.
	if _, _, tag := tagConn(t, addrB); tag != "two" {
		t.Fatalf("b after reload: tag %q, want two", tag)
	}
	// The old b connection was on a changed route: closed after the grace
	// period. The a connection's route never changed: still echoing.
	cb.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := brb.ReadString('\n'); err == nil {
		t.Fatal("connection of the changed route still open after the grace period")
	}
	if err := echoes(ca, bra); err != nil {
		t.Fatalf("connection of the unchanged route broken: %v", err)
	}
}

// TestReloadAddsAndRemovesListeners: a new entrypoint binds, a removed one
// stops accepting at once and drains its open connection until it ends.
func TestReloadAddsAndRemovesListeners(t *testing.T) {
	one := taggedBackend(t, "one")
	const src = `
global { grace_period = "10s" }
entrypoint "%s" { address = "127.0.0.1:0" }
tcp_route "r" {
  entrypoints = ["%[1]s"]
  service     = "one"
}
service "one" {
  backend "%s" {}
}
`
	s := started(t, fmt.Sprintf(src, "old", one))
	oldAddr := s.Addr("old").String()
	c, br, _ := tagConn(t, oldAddr)
	ch := reload(t, s, fmt.Sprintf(src, "new", one))
	if len(ch.ListenersAdded) != 1 || len(ch.ListenersRemoved) != 1 {
		t.Fatalf("changes %+v", ch)
	}
	if _, _, tag := tagConn(t, s.Addr("new").String()); tag != "one" {
		t.Fatalf("new entrypoint: tag %q", tag)
	}
	// The removed socket is closed when Reload returns.
	if c2, err := net.Dial("tcp", oldAddr); err == nil {
		c2.Close()
		t.Fatal("removed entrypoint still accepts")
	}
	// Its open connection is drained, not cut: still echoing.
	if err := echoes(c, br); err != nil {
		t.Fatalf("removed entrypoint's connection cut before the grace period: %v", err)
	}
}

// TestReloadFailureChangesNothing: a reload whose new entrypoint cannot be
// bound fails and the old configuration keeps serving.
func TestReloadFailureChangesNothing(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	one, two := taggedBackend(t, "one"), taggedBackend(t, "two")
	s := started(t, fmt.Sprintf(tcpTwoRoutes, "1s", "one", "one", one, two))
	bad := fmt.Sprintf(tcpTwoRoutes, "1s", "two", "two", one, two) + `
entrypoint "c" { address = "` + busy.Addr().String() + `" }
tcp_route "rc" {
  entrypoints = ["c"]
  service     = "two"
}
`
	_, err = s.Reload(parse(t, bad))
	if err == nil || !strings.Contains(err.Error(), `entrypoint "c"`) {
		t.Fatalf("Reload = %v, want a bind error naming entrypoint c", err)
	}
	if _, _, tag := tagConn(t, s.Addr("a").String()); tag != "one" {
		t.Fatalf("after a failed reload: tag %q, want one", tag)
	}
	if s.Addr("c") != nil {
		t.Fatal("entrypoint of the failed reload is known")
	}
}

const httpRespond = `
global { grace_period = "2s" }
entrypoint "web" { address = "127.0.0.1:0" }
http_route "r" {
  entrypoints = ["web"]
  service     = "%s"
}
service "v1" {
  respond { body = "v1" }
}
service "v2" {
  respond { body = "v2" }
}
`

// TestReloadHTTPKeepAlive: a keep-alive connection opened before a reload
// serves its next request with the new routes; no request fails while
// reloading.
func TestReloadHTTPKeepAlive(t *testing.T) {
	s := started(t, fmt.Sprintf(httpRespond, "v1"))
	url := "http://" + s.Addr("web").String() + "/"
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	get := func() (string, error) {
		resp, err := client.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return "", fmt.Errorf("status %d", resp.StatusCode)
		}
		return string(b), err
	}
	if b, err := get(); err != nil || b != "v1" {
		t.Fatalf("before: %q %v", b, err)
	}
	var failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := get(); err != nil {
					failed.Add(1)
					t.Logf("request failed: %v", err)
				}
			}
		})
	}
	for i := range 20 {
		reload(t, s, fmt.Sprintf(httpRespond, []string{"v2", "v1"}[i%2]))
	}
	reload(t, s, fmt.Sprintf(httpRespond, "v2"))
	close(stop)
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d requests failed during reloads", failed.Load())
	}
	if b, err := get(); err != nil || b != "v2" {
		t.Fatalf("after: %q %v", b, err)
	}
	// A change of the HTTP server's settings replaces it; open keep-alive
	// connections are closed when idle, requests still succeed.
	ch := reload(t, s, strings.Replace(fmt.Sprintf(httpRespond, "v1"), `entrypoint "web" { address = "127.0.0.1:0" }`,
		`entrypoint "web" {
  address = "127.0.0.1:0"
  timeouts { read_header = "3s" }
}`, 1))
	if ch.HTTPServersReplaced != 1 {
		t.Fatalf("changes %+v: want the HTTP server replaced", ch)
	}
	if b, err := get(); err != nil || b != "v1" {
		t.Fatalf("after replacing the HTTP server: %q %v", b, err)
	}
}

// TestReloadUDPFlowKept: an open UDP flow keeps its backend across a reload
// that leaves its route alone.
func TestReloadUDPFlowKept(t *testing.T) {
	const src = `
entrypoint "u" {
  address = "127.0.0.1:0"
  network = "udp"
}
entrypoint "t%s" { address = "127.0.0.1:0" }
udp_route "r" {
  entrypoints = ["u"]
  service     = "echo"
}
service "echo" {
  backend "%s" {}
}
`
	echo := udpEchoBackend(t)
	s := started(t, fmt.Sprintf(src, "1", echo))
	c, err := net.Dial("udp", s.Addr("u").String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip := func() error {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		buf := make([]byte, 8)
		n, err := c.Read(buf)
		if err == nil && string(buf[:n]) != "ping" {
			err = fmt.Errorf("got %q", buf[:n])
		}
		return err
	}
	for i := range 10 {
		if err := roundTrip(); err != nil {
			t.Fatalf("round trip %d: %v", i, err)
		}
		reload(t, s, fmt.Sprintf(src, fmt.Sprint(i+2), echo))
	}
	if err := roundTrip(); err != nil {
		t.Fatal(err)
	}
	if n := s.listenerOf("u").udp.Flows(); n != 1 {
		t.Fatalf("%d flows, want the one flow kept", n)
	}
}

func (s *Server) listenerOf(ep string) *listener {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.gen.eps {
		if p.cfg.Name == ep {
			return p.ln
		}
	}
	return nil
}

func TestReloadAfterShutdown(t *testing.T) {
	s := newServer(t, parse(t, fmt.Sprintf(httpRespond, "v1")))
	if _, err := s.Reload(parse(t, fmt.Sprintf(httpRespond, "v2"))); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Reload before Start = %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reload(parse(t, fmt.Sprintf(httpRespond, "v2"))); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Reload after Shutdown = %v", err)
	}
}

// TestReloadInFlightRequestFinishes: a request in flight when a reload
// points its route at another service finishes on the old one; the next
// request goes to the new one.
func TestReloadInFlightRequestFinishes(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	slow := newHTTPBackend(t, func(w http.ResponseWriter, _ *http.Request) {
		arrived <- struct{}{}
		<-release
		io.WriteString(w, "old")
	})
	fast := newHTTPBackend(t, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "new") })
	const src = `
global { grace_period = "10s" }
entrypoint "web" { address = "127.0.0.1:0" }
http_route "r" {
  entrypoints = ["web"]
  service     = "%s"
}
service "slow" {
  backend "http://%s" {}
}
service "fast" {
  backend "http://%s" {}
}
`
	s := started(t, fmt.Sprintf(src, "slow", slow, fast))
	url := "http://" + s.Addr("web").String() + "/"
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	type result struct {
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := client.Get(url)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{string(b), err}
	}()
	<-arrived
	reload(t, s, fmt.Sprintf(src, "fast", slow, fast))
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "new" {
		t.Fatalf("request after the reload: %q, want the new service", b)
	}
	close(release)
	if r := <-done; r.err != nil || r.body != "old" {
		t.Fatalf("request in flight across the reload: %q %v, want the old service's answer", r.body, r.err)
	}
}

// newHTTPBackend serves h on loopback until the test ends.
func newHTTPBackend(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return ln.Addr().String()
}

// TestRelaxGCRestores: a reload raises GOGC only while it runs and leaves a
// higher or disabled setting alone.
func TestRelaxGCRestores(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)
	for _, tt := range []struct{ before, during int }{
		{100, reloadGCPercent},
		{reloadGCPercent * 2, reloadGCPercent * 2},
		{-1, -1},
	} {
		debug.SetGCPercent(tt.before)
		restore := relaxGC()
		if got := debug.SetGCPercent(tt.during); got != tt.during {
			t.Errorf("GOGC %d: %d during the reload, want %d", tt.before, got, tt.during)
		}
		restore()
		if got := debug.SetGCPercent(tt.before); got != tt.before {
			t.Errorf("GOGC %d: %d after the reload", tt.before, got)
		}
	}
}
