//go:build linux

package integration

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func reloadUDPConfig(dns string, version int) string {
	return hcl(`
global { grace_period = "2s" }
entrypoint "dns" {
  address = "127.0.0.1:0"
  network = "udp"
}
entrypoint "web" { address = "127.0.0.1:0" }
udp_route "dns" {
  entrypoints = ["dns"]
  service     = "dnsmasq"
}
http_route "v%d" {
  entrypoints = ["web"]
  service     = "v"
}
service "dnsmasq" {
  backend %q {}
}
service "v" {
  respond { body = "version %d" }
}
`, version, dns, version)
}

// TestReloadUDPNoLoss: dig queries dnsmasq through proxynow in a loop, one
// try each (a lost datagram fails the query), while the configuration is
// reloaded: no query fails.
func TestReloadUDPNoLoss(t *testing.T) {
	dnsmasq := requireTool(t, "dnsmasq")
	dig := requireTool(t, "dig")
	port := freePort(t)
	dm := startHelper(t, dnsmasq, "-C", "/dev/null", "--keep-in-foreground", "--no-resolv", "--no-hosts",
		"--port="+strconv.Itoa(port), "--listen-address=127.0.0.1", "--bind-interfaces",
		"--address=/proxynow.test/127.0.0.42", "--pid-file=", "--user=root", "--log-facility=-")
	// src, when set, is the client's address: the same flow for every
	// query.
	queryFrom := func(port, src string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		args := []string{"@127.0.0.1", "-p", port, "proxynow.test", "A", "+short", "+time=3", "+tries=1"}
		if src != "" {
			args = append(args, "-b", src)
		}
		out, err := exec.CommandContext(ctx, dig, args...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	query := func(port string) (string, error) { return queryFrom(port, "") }
	deadline := time.Now().Add(readyTimeout)
	for {
		if out, err := query(strconv.Itoa(port)); err == nil && out == "127.0.0.42" {
			break
		}
		if dm.exited() || time.Now().After(deadline) {
			t.Fatalf("dnsmasq on port %d not answering (exited: %v)", port, dm.exited())
		}
		time.Sleep(100 * time.Millisecond)
	}

	p := startReloadable(t, reloadUDPConfig(fmt.Sprintf("127.0.0.1:%d", port), 0))
	_, pport, _ := net.SplitHostPort(p.addr("dns"))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok int
	var failures []string
	// One loop keeps one flow (a fixed source port), the other opens a
	// flow per query.
	for _, src := range []string{fmt.Sprintf("127.0.0.1#%d", freePort(t)), ""} {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				out, err := queryFrom(pport, src)
				mu.Lock()
				if err != nil || out != "127.0.0.42" {
					failures = append(failures, fmt.Sprintf("%q %v", out, err))
				} else {
					ok++
				}
				mu.Unlock()
			}
		})
	}
	for v := 1; v <= 10; v++ {
		if !p.sighup(t, reloadUDPConfig(fmt.Sprintf("127.0.0.1:%d", port), v)) {
			t.Fatalf("reload %d rejected", v)
		}
		time.Sleep(150 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d queries answered across 10 reloads", ok)
	if len(failures) > 0 {
		t.Fatalf("%d of %d queries failed across reloads: %v", len(failures), ok+len(failures), failures)
	}
	if ok < 10 {
		t.Fatalf("only %d queries ran", ok)
	}
}
