//go:build linux

package integration

// Helpers for the quic_*_test.go files: HTTP/3 clients (quic-go), the
// gtlsclient runner (ngtcp2) and a UDP relay that can hold back packets.

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	quic "github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// newH3Client is quic-go's HTTP/3 client verified against ca for
// serverName; its connections close in t.Cleanup.
func newH3Client(t testing.TB, ca *testCA, serverName string) *http.Client {
	t.Helper()
	tr := &http3.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.pool(), ServerName: serverName},
		QUICConfig:      &quic.Config{HandshakeIdleTimeout: 10 * time.Second, MaxIdleTimeout: ioTimeout},
	}
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr, Timeout: ioTimeout, CheckRedirect: noRedirect}
}

// gtlsFetch fetches https://host:port/path from addr with ngtcp2's
// gtlsclient (it does not verify certificates) and returns the body.
func gtlsFetch(t testing.TB, addr, sni, path string) (string, error) {
	t.Helper()
	bin := requireTool(t, "gtlsclient")
	host, port, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	out, err := runToolOutput(t, nil, bin, "--quiet", "--exit-on-all-streams-close", "--sni="+sni,
		"--download="+dir, "--timeout=15s", host, port, "https://"+sni+":"+port+path)
	if err != nil {
		return out, err
	}
	name := filepath.Base(path)
	if name == "/" || name == "." || name == "" || strings.HasSuffix(path, "/") {
		name = "index.html"
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	return string(b), err
}

// udpRelay forwards datagrams between one client and a server, holding
// back those toward the client by holdOut, and can move to a new source
// port toward the server mid-connection (a NAT rebinding). Its goroutines
// end in Close.
type udpRelay struct {
	front   *net.UDPConn // clients send here
	back    atomic.Pointer[net.UDPConn]
	server  *net.UDPAddr
	client  atomic.Pointer[net.UDPAddr]
	holdOut atomic.Int64 // nanoseconds
	wg      sync.WaitGroup
	timers  sync.WaitGroup
	mu      sync.Mutex // serialises rebind and Close
	closed  atomic.Bool
}

func startUDPRelay(t testing.TB, server string) *udpRelay {
	t.Helper()
	sa, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		t.Fatal(err)
	}
	front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r := &udpRelay{front: front, server: sa}
	if err := r.rebind(); err != nil {
		front.Close()
		t.Fatal(err)
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		buf := make([]byte, 65536)
		for {
			n, from, err := front.ReadFromUDP(buf)
			if err != nil {
				return
			}
			r.client.Store(from)
			_, _ = r.back.Load().WriteToUDP(buf[:n], sa)
		}
	}()
	t.Cleanup(r.Close)
	return r
}

// rebind sends the client's datagrams from a new local port from now on;
// the old socket is closed (late replies to it are lost, as at a NAT).
func (r *udpRelay) rebind() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return net.ErrClosed
	}
	back, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	if old := r.back.Swap(back); old != nil {
		old.Close()
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		buf := make([]byte, 65536)
		for {
			n, _, err := back.ReadFromUDP(buf)
			if err != nil {
				return
			}
			to := r.client.Load()
			if to == nil {
				continue
			}
			if d := time.Duration(r.holdOut.Load()); d > 0 {
				pkt := append([]byte(nil), buf[:n]...)
				r.timers.Add(1)
				time.AfterFunc(d, func() {
					defer r.timers.Done()
					if !r.closed.Load() {
						_, _ = r.front.WriteToUDP(pkt, to)
					}
				})
				continue
			}
			_, _ = r.front.WriteToUDP(buf[:n], to)
		}
	}()
	return nil
}

func (r *udpRelay) addr() string { return r.front.LocalAddr().String() }

// backAddr is the relay's current source address toward the server.
func (r *udpRelay) backAddr() string { return r.back.Load().LocalAddr().String() }

func (r *udpRelay) Close() {
	r.mu.Lock()
	if r.closed.Swap(true) {
		r.mu.Unlock()
		return
	}
	r.front.Close()
	r.back.Load().Close()
	r.mu.Unlock()
	r.wg.Wait()
	r.timers.Wait()
}

// h3ctx is a context bounded by ioTimeout and cancelled in t.Cleanup.
func h3ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	t.Cleanup(cancel)
	return ctx
}

// startH3Proxy is a proxy whose entrypoint "web" serves HTTP/1.1, HTTP/2
// and HTTP/3 with a certificate for t.test from ca, every request going to
// the HTTP/1 backend at addr, with an admin endpoint (metrics).
func startH3Proxy(t testing.TB, ca *testCA, addr string) *proc {
	t.Helper()
	return startProxy(t, h3TLS(t, ca)+hcl(`
admin {
  address = "127.0.0.1:0"
}
entrypoint "web" {
  address = "127.0.0.1:0"
  http3   = true
}
http_route "app" {
  entrypoints = ["web"]
  service     = "app"
}
service "app" {
  backend "http://%s" {}
}
`, addr))
}
