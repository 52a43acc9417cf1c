//go:build linux

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestACMEIssueEachChallenge has pebble issue 10 certificates in a row
// per challenge type, with its 5% nonce rejection on, and checks that a
// client trusting pebble's root gets a valid certificate for each name.
// http-01 goes through an entrypoint whose middleware redirects every
// request to HTTPS: the challenge is answered before it.
func TestACMEIssueEachChallenge(t *testing.T) {
	for _, challenge := range []string{"http-01", "tls-alpn-01", "dns-01"} {
		t.Run(challenge, func(t *testing.T) {
			e := startPebble(t, pebbleOpts{})
			names := make([]string, 10)
			for i := range names {
				names[i] = fmt.Sprintf("n%d.%s.test", i, challenge[:3])
			}
			extra := ""
			if challenge == "dns-01" {
				t.Setenv("HTTPREQ_ENDPOINT", e.httpreqAdapter(t))
				t.Setenv("HTTPREQ_POLLING_INTERVAL", "1")
				t.Setenv("HTTPREQ_PROPAGATION_TIMEOUT", "30")
				extra = fmt.Sprintf("    dns_provider  = \"httpreq\"\n    dns_resolvers = [%q]\n", e.dnsAddr)
			}
			storage := filepath.Join(t.TempDir(), "acme")
			start := time.Now()
			p := startProxy(t, e.acmeConfig(e.acmeBlock("pebble", challenge, storage, names, extra)))
			addr := p.addr("websecure")
			roots := e.roots()
			first := waitServed(t, p, addr, names[:1], roots, 2*time.Minute)
			tFirst := time.Since(start)
			all := waitServed(t, p, addr, names, roots, 3*time.Minute)
			t.Logf("%s: first certificate served %v after start, all %d after %v; %d orders",
				challenge, tFirst.Round(time.Millisecond), len(names), time.Since(start).Round(time.Millisecond), e.orders())
			for _, n := range names {
				if err := all[n].VerifyHostname(n); err != nil {
					t.Errorf("%s: %v", n, err)
				}
			}
			if first[names[0]].NotAfter.Before(time.Now()) {
				t.Errorf("served certificate already expired")
			}
			if got := e.orders(); got != len(names) {
				t.Errorf("pebble got %d orders for %d names, want one each", got, len(names))
			}
			// The certificate is served as it is stored, a moment before
			// its log line is written (and read back from the pipe).
			waitLogCount(t, p, "certificate obtained", len(names), 10*time.Second)
			if got := logCount(p, "certificate obtained"); got != len(names) {
				t.Errorf("%d \"certificate obtained\" log lines, want %d", got, len(names))
			}
			checkStoragePerms(t, storage)
		})
	}
}

// checkStoragePerms checks that every directory under root is 0700 and
// every file 0600, with no temporary file left behind.
func checkStoragePerms(t *testing.T, root string) {
	t.Helper()
	files := 0
	err := filepath.Walk(root, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		want := os.FileMode(0o600)
		if fi.IsDir() {
			want = 0o700
		} else {
			files++
			if base := filepath.Base(path); base[0] == '.' {
				t.Errorf("temporary file left in storage: %s", path)
			}
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", path, fi.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Error("storage holds no file")
	}
}
