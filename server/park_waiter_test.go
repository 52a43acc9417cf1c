package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// eachWaiter runs f with the epoll waiter (where there is one) and with
// the goroutine per connection.
func eachWaiter(t *testing.T, f func(t *testing.T)) {
	for _, epoll := range []bool{true, false} {
		name := "goroutine"
		if epoll {
			name = "epoll"
		}
		t.Run(name, func(t *testing.T) {
			old := parkEpoll
			parkEpoll = epoll
			t.Cleanup(func() { parkEpoll = old })
			f(t)
		})
	}
}

// webListener is s's listener of entrypoint "web".
func webListener(t *testing.T, s *Server) *listener {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.listeners {
		if l.entrypoint() == "web" {
			return l
		}
	}
	t.Fatal("no listener web")
	return nil
}

// dialKeepAlive opens n connections to s's "web", each after one request.
func dialKeepAlive(t *testing.T, s *Server, n int) ([]net.Conn, []*bufio.Reader) {
	t.Helper()
	conns := make([]net.Conn, n)
	brs := make([]*bufio.Reader, n)
	for i := range conns {
		conns[i], brs[i] = dialWeb(t, s, 60*time.Second)
		get(t, conns[i], brs[i])
	}
	return conns, brs
}

// TestHTTPParkRequestAtParkTime: requests sent as their connections are
// being parked (around the park delay after the last answer) are all
// answered at once, none left until the idle timeout.
func TestHTTPParkRequestAtParkTime(t *testing.T) {
	eachWaiter(t, func(t *testing.T) {
		shortPark(t)
		s := started(t, fmt.Sprintf(httpRespond, "v1"))
		const clients, rounds = 4, 60
		conns, brs := dialKeepAlive(t, s, clients)
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for i := range clients {
			wg.Go(func() {
				c, br := conns[i], brs[i]
				for r := range rounds {
					// 10-30ms: before, at and after the 20ms park delay.
					time.Sleep(time.Duration(10_000+rand.IntN(20_000)) * time.Microsecond)
					c.SetReadDeadline(time.Now().Add(10 * time.Second))
					if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
						errs <- err
						return
					}
					if err := readBodyIs(br, "v1"); err != nil {
						errs <- fmt.Errorf("client %d, round %d: %w", i, r, err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

// TestHTTPParkedReloadNewServer: connections parked while a reload
// replaces the entrypoint's HTTP server (its settings changed) go to the
// new one with their next request.
func TestHTTPParkedReloadNewServer(t *testing.T) {
	eachWaiter(t, func(t *testing.T) {
		shortPark(t)
		const conf = `
entrypoint "web" {
  address  = "127.0.0.1:0"
  timeouts { read_header = "%s" }
}
http_route "r" {
  entrypoints = ["web"]
  service     = "v"
}
service "v" {
  respond { body = "%s" }
}
`
		s := started(t, fmt.Sprintf(conf, "10s", "v1"))
		const n = 20
		conns, brs := dialKeepAlive(t, s, n)
		waitParked(t, s, n)
		l := webListener(t, s)
		old := l.http.Load()
		reload(t, s, fmt.Sprintf(conf, "11s", "v2"))
		if l.http.Load() == old {
			t.Fatal("the reload kept the HTTP server: nothing to test")
		}
		for i, c := range conns {
			if b := get(t, c, brs[i]); b != "v2" {
				t.Fatalf("connection %d: body %q after the reload", i, b)
			}
		}
		waitParked(t, s, n)
	})
}

// TestHTTPParkedShutdownMany: Shutdown closes every parked connection at
// once, and no goroutine of the server (the waiter's included) is left.
func TestHTTPParkedShutdownMany(t *testing.T) {
	eachWaiter(t, func(t *testing.T) {
		ignore := goleak.IgnoreCurrent()
		shortPark(t)
		s := started(t, fmt.Sprintf(httpRespond, "v1"))
		const n = 200
		conns, brs := dialKeepAlive(t, s, n)
		waitParked(t, s, n)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		start := time.Now()
		if err := s.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("Shutdown waited %v for parked connections", d)
		}
		for i := range conns {
			if n, err := brs[i].Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("connection %d after Shutdown: read %d, %v; want EOF", i, n, err)
			}
		}
		goleak.VerifyNone(t, ignore)
	})
}

// TestHTTPParkedManyRandomOrder: 2,000 parked connections woken in random
// order each get the answer to their own request.
func TestHTTPParkedManyRandomOrder(t *testing.T) {
	shortPark(t)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path)
	}))
	defer be.Close()
	s := started(t, fmt.Sprintf(`
entrypoint "web" {
  address         = "127.0.0.1:0"
  max_connections = 5000
}
http_route "r" {
  entrypoints = ["web"]
  service     = "be"
}
service "be" {
  backend "http://%s" {}
}
`, be.Listener.Addr()))
	const n = 2000
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.Dial("tcp", s.Addr("web").String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Minute))
		conns[i] = c
		fmt.Fprintf(c, "GET /first/%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
	}
	brs := make([]*bufio.Reader, n)
	for i, c := range conns {
		brs[i] = bufio.NewReader(c)
		if err := readBodyIs(brs[i], fmt.Sprintf("/first/%d", i)); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	waitParked(t, s, n)
	order := rand.Perm(n)
	for _, i := range order {
		fmt.Fprintf(conns[i], "GET /next/%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
	}
	for _, i := range order {
		if err := readBodyIs(brs[i], fmt.Sprintf("/next/%d", i)); err != nil {
			t.Fatalf("connection %d woken: %v", i, err)
		}
	}
}

// readBodyIs reads one answer, which must be 200 with body want.
func readBodyIs(br *bufio.Reader, want string) error {
	b, err := readAnswer(br)
	if err == nil && b != want {
		err = fmt.Errorf("body %q, want %q", b, want)
	}
	return err
}

// readAnswer reads one answer, which must be 200, and returns its body.
func readAnswer(br *bufio.Reader) (string, error) {
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("answer %s, body %q, error %v", resp.Status, b, err)
	}
	return string(b), nil
}
