//go:build linux

package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestACMEOnDemand: an approved name gets its certificate at its first
// handshake, a denied one gets none, and 1,000 handshakes with random
// approved names cause at most the configured number of orders.
func TestACMEOnDemand(t *testing.T) {
	e := startPebble(t, pebbleOpts{})
	var asked atomic.Int64
	ask := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		if strings.HasSuffix(r.URL.Query().Get("domain"), ".ok.test") {
			return // 200
		}
		w.WriteHeader(http.StatusForbidden)
	}))
	defer ask.Close()
	const rate = 3
	extra := fmt.Sprintf("    on_demand {\n      ask      = %q\n      rate     = %d\n      interval = \"1h\"\n    }\n", ask.URL, rate)
	block := strings.Replace(e.acmeBlock("od", "tls-alpn-01", filepath.Join(t.TempDir(), "acme"), []string{"x"}, extra),
		"    domains   = [\"x\"]\n", "", 1)
	p := startProxy(t, e.acmeConfig(block))
	addr := p.addr("websecure")
	roots := e.roots()

	dial := func(name string, d time.Duration, roots *tlsRoots) (*tls.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		cfg := &tls.Config{ServerName: name, InsecureSkipVerify: roots == nil}
		if roots != nil {
			cfg.RootCAs = roots.pool
		}
		// The context bounds connect and handshake (a Dialer Timeout would
		// bound the handshake too).
		c, err := (&tls.Dialer{NetDialer: &net.Dialer{}, Config: cfg}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return c.(*tls.Conn), nil
	}
	start := time.Now()
	c, err := dial("first.ok.test", 60*time.Second, &tlsRoots{roots})
	if err != nil {
		t.Fatalf("first handshake of an approved name: %v", err)
	}
	c.Close()
	t.Logf("on-demand: first handshake completed with a new certificate in %v", time.Since(start).Round(time.Millisecond))
	if _, err := dial("evil.example", 30*time.Second, nil); err == nil {
		t.Error("a denied name got a certificate")
	}
	ordersBefore := e.orders()
	if ordersBefore != 1 {
		t.Errorf("%d orders after one approved name, want 1", ordersBefore)
	}

	// 1,000 random approved names, 50 at a time; each handshake is bounded.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 50)
	var ok atomic.Int64
	for i := range 1000 {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if c, err := dial(fmt.Sprintf("r%d-%d.ok.test", i, time.Now().UnixNano()%1e6), 45*time.Second, nil); err == nil {
				ok.Add(1)
				c.Close()
			}
		})
	}
	wg.Wait()
	// Issuances that outlived their handshake finish in the background.
	waitLogCount(t, p, "certificate obtained", 1, time.Second)
	if got := e.orders(); got > rate {
		t.Errorf("%d orders after 1,000 random names, want at most %d (rate)", got, rate)
	}
	t.Logf("1,000 random names: %d handshakes got a certificate, %d orders, %d ask calls", ok.Load(), e.orders(), asked.Load())
	if !strings.Contains(p.log.String(), "order rate limit reached") {
		t.Error("no rate-limit log line")
	}
	if p.exited() {
		t.Fatal("proxynow exited")
	}
	// The first name is served from memory now, without a new order.
	if _, err := verifiedLeaf(addr, "first.ok.test", roots); err != nil {
		t.Errorf("first.ok.test later: %v", err)
	}
}

type tlsRoots struct{ pool *x509.CertPool }
