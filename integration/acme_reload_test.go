//go:build linux

package integration

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestACMEReload: a reload that leaves the acme blocks alone keeps the
// ACME manager (no order, same certificate); one that adds a domain
// orders that domain only, and the certificates already issued are served
// throughout from storage.
func TestACMEReload(t *testing.T) {
	e := startPebble(t, pebbleOpts{})
	storage := filepath.Join(t.TempDir(), "acme")
	names := []string{"a.reload.test"}
	cfg := e.acmeConfig(e.acmeBlock("pebble", "tls-alpn-01", storage, names, ""))
	r := startReloadable(t, cfg)
	addr := r.addr("websecure")
	roots := e.roots()
	first := waitServed(t, r.proc, addr, names, roots, 2*time.Minute)[names[0]]
	waitLogCount(t, r.proc, "ACME initial check done", 1, time.Minute)

	// Unrelated change: the hello body.
	if !r.sighup(t, strings.Replace(cfg, `body   = "hello"`, `body   = "hello again"`, 1)) {
		t.Fatal("reload rejected")
	}
	if leaf, err := verifiedLeaf(addr, names[0], roots); err != nil || leaf.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatalf("after an unrelated reload: %v (same certificate: %v)", err, err == nil && leaf.SerialNumber.Cmp(first.SerialNumber) == 0)
	}
	if n := logCount(r.proc, "ACME initial check done"); n != 1 {
		t.Errorf("the ACME manager was replaced by a reload that did not touch it (%d initial checks)", n)
	}

	// Add a domain: a new manager serves a.reload.test from storage at
	// once and orders b.reload.test only.
	more := []string{"a.reload.test", "b.reload.test"}
	if !r.sighup(t, e.acmeConfig(e.acmeBlock("pebble", "tls-alpn-01", storage, more, ""))) {
		t.Fatal("reload rejected")
	}
	if leaf, err := verifiedLeaf(addr, names[0], roots); err != nil || leaf.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatalf("a.reload.test right after the reload that added a domain: %v", err)
	}
	waitServed(t, r.proc, addr, more, roots, 2*time.Minute)
	waitLogCount(t, r.proc, "ACME initial check done", 2, time.Minute)
	if got := e.orders(); got != 2 {
		t.Errorf("%d orders, want 2 (one per domain)", got)
	}
}
