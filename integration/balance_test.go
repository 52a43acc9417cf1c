//go:build linux

package integration

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// backendBlocks renders backend blocks; weights[i] == 0 means no weight attribute.
func backendBlocks(addrs []string, weights []int) string {
	var b strings.Builder
	for i, a := range addrs {
		if i < len(weights) && weights[i] > 0 {
			fmt.Fprintf(&b, "  backend %q {\n    weight = %d\n  }\n", a, weights[i])
		} else {
			fmt.Fprintf(&b, "  backend %q {}\n", a)
		}
	}
	return b.String()
}

func balancedProxy(t *testing.T, balancer string, addrs []string, weights []int) *proc {
	t.Helper()
	return startProxy(t, hcl(`
entrypoint "in" {
  address = "127.0.0.1:0"
}
tcp_route "r" {
  entrypoints = ["in"]
  service     = "s"
}
service "s" {
  balancer        = %q
  connect_timeout = "5s"
  fail_timeout    = "10s"
%s}
`, balancer, backendBlocks(addrs, weights)))
}

// nameBackend replies to one byte with its name, then closes.
func nameBackend(name string) func(*tcpBackend, *net.TCPConn) {
	return func(_ *tcpBackend, c *net.TCPConn) {
		_ = c.SetDeadline(time.Now().Add(ioTimeout))
		var b [1]byte
		if _, err := io.ReadFull(c, b[:]); err != nil {
			return
		}
		_, _ = io.WriteString(c, name)
	}
}

// fanOut opens n connections through addr, at most workers at a time; each
// writes one byte and reads the backend's one-byte name. keep says whether
// to hold the connection open until fanOut returns. It returns the names.
func fanOut(t *testing.T, addr string, n, workers int, keep func(name string) bool) []string {
	t.Helper()
	var (
		mu    sync.Mutex
		names []string
		errs  []error
		held  []net.Conn
		wg    sync.WaitGroup
		sem   = make(chan struct{}, workers)
	)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			var name string
			if err == nil {
				name, err = roundTripName(c)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("connection %d: %w", i, err))
			} else {
				names = append(names, name)
			}
			if c != nil {
				if err == nil && keep(name) {
					held = append(held, c)
				} else {
					c.Close()
				}
			}
		})
	}
	wg.Wait()
	for _, c := range held {
		c.Close()
	}
	for _, err := range errs[:min(len(errs), 5)] {
		t.Error(err)
	}
	if len(errs) > 0 {
		t.Fatalf("%d of %d connections failed", len(errs), n)
	}
	return names
}

func roundTripName(c net.Conn) (string, error) {
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte{'?'}); err != nil {
		return "", err
	}
	var b [1]byte
	_, err := io.ReadFull(c, b[:])
	return string(b[:]), err
}

func countNames(names []string) map[string]int {
	m := map[string]int{}
	for _, n := range names {
		m[n]++
	}
	return m
}

func TestBalancing(t *testing.T) {
	always := func(string) bool { return true }
	tests := []struct {
		name     string
		balancer string
		weights  []int
		check    func(t *testing.T, got map[string]int)
	}{
		{
			name:     "round_robin is even",
			balancer: "round_robin",
			check: func(t *testing.T, got map[string]int) {
				for _, b := range []string{"A", "B", "C"} {
					if got[b] < 31 || got[b] > 35 {
						t.Errorf("backend %s got %d of 100 connections, want 33±2 (all: %v)", b, got[b], got)
					}
				}
			},
		},
		{
			name:     "weighted 3:1:1 is smooth WRR",
			balancer: "weighted",
			weights:  []int{3, 1, 1},
			check: func(t *testing.T, got map[string]int) {
				want := map[string]int{"A": 60, "B": 20, "C": 20}
				for b, w := range want {
					if got[b] != w {
						t.Errorf("backend %s got %d of 100 connections, want %d (all: %v)", b, got[b], w, got)
					}
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var addrs []string
			bes := map[string]*tcpBackend{}
			for _, n := range []string{"A", "B", "C"} {
				bes[n] = startTCPBackend(t, nameBackend(n))
				addrs = append(addrs, bes[n].addr)
			}
			p := balancedProxy(t, tc.balancer, addrs, tc.weights)
			names := fanOut(t, p.addr("in"), 100, 100, always)
			got := countNames(names)
			for n, be := range bes {
				if int(be.accepted.Load()) != got[n] {
					t.Errorf("backend %s accepted %d connections but answered %d", n, be.accepted.Load(), got[n])
				}
			}
			tc.check(t, got)
		})
	}

	t.Run("least_conn avoids the backend holding connections", func(t *testing.T) {
		// A keeps every connection open (the client holds those it gets
		// from A); B and C answer and close at once.
		slow := startTCPBackend(t, func(b *tcpBackend, c *net.TCPConn) {
			nameBackend("A")(b, c)
			b.sleep(ioTimeout)
		})
		fb := startTCPBackend(t, nameBackend("B"))
		fc := startTCPBackend(t, nameBackend("C"))
		p := balancedProxy(t, "least_conn", []string{slow.addr, fb.addr, fc.addr}, nil)
		names := fanOut(t, p.addr("in"), 100, 5, func(n string) bool { return n == "A" })
		got := countNames(names)
		t.Logf("least_conn distribution: %v", got)
		if got["A"] >= got["B"] || got["A"] >= got["C"] || got["A"] > 15 {
			t.Errorf("slow backend A got %d connections, want fewer than B (%d) and C (%d) and at most 15", got["A"], got["B"], got["C"])
		}
	})
}

func TestBackendDown(t *testing.T) {
	for _, balancer := range []string{"round_robin", "weighted", "least_conn", "random"} {
		t.Run("dead backend skipped/"+balancer, func(t *testing.T) {
			b1 := startTCPBackend(t, nameBackend("B"))
			b2 := startTCPBackend(t, nameBackend("C"))
			p := balancedProxy(t, balancer, []string{closedAddr(t), b1.addr, b2.addr}, nil)
			names := fanOut(t, p.addr("in"), 30, 1, func(string) bool { return false })
			if got := b1.accepted.Load() + b2.accepted.Load(); got != 30 || len(names) != 30 {
				t.Errorf("live backends accepted %d connections, clients got %d answers; want 30", got, len(names))
			}
		})
	}

	t.Run("all backends down closes the client at once", func(t *testing.T) {
		p := balancedProxy(t, "round_robin", []string{closedAddr(t), closedAddr(t)}, nil)
		addr := p.addr("in")
		// The first attempt finds the backends down by dialing; the later
		// ones run while both are inside fail_timeout.
		for i := range 3 {
			el, got := dialExpectClosed(t, addr, nil, 5*time.Second)
			if len(got) > 0 {
				t.Errorf("attempt %d: got data %q from a service with no live backend", i, got)
			}
			if el > 100*time.Millisecond {
				t.Errorf("attempt %d: connection closed after %v, want within 100ms", i, el)
			}
		}
	})
}
