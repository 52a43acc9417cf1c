//go:build linux

package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fixedRate sends GET url with client at rate requests per second from
// workers goroutines until ctx is done. A tick that finds every worker busy
// is counted as skipped (the rate is an upper bound, never a flood).
type fixedRate struct {
	name            string
	ok, failed      atomic.Int64
	skipped         atomic.Int64
	mu              sync.Mutex
	errs            []string
	lat             map[string][]time.Duration // by phase
	phase           atomic.Pointer[string]
	wantBody, wantB string
}

func newFixedRate(name string) *fixedRate {
	f := &fixedRate{name: name, lat: map[string][]time.Duration{}}
	f.setPhase("warm-up")
	return f
}

func (f *fixedRate) setPhase(p string) { f.phase.Store(&p) }

func (f *fixedRate) run(ctx context.Context, client *http.Client, url string, rate, workers int) {
	ticks := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range ticks {
				phase := *f.phase.Load()
				t0 := time.Now()
				r, err := do(client, url, reqSpec{})
				d := time.Since(t0)
				if err == nil && r.status != http.StatusOK {
					err = fmt.Errorf("status %d body %q", r.status, r.body)
				}
				f.mu.Lock()
				if err != nil {
					f.failed.Add(1)
					if len(f.errs) < 10 {
						f.errs = append(f.errs, fmt.Sprintf("%s: %v", phase, err))
					}
				} else {
					f.ok.Add(1)
					f.lat[phase] = append(f.lat[phase], d)
				}
				f.mu.Unlock()
			}
		})
	}
	tk := time.NewTicker(time.Second / time.Duration(rate))
	defer func() {
		tk.Stop()
		close(ticks)
		wg.Wait()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
			select {
			case ticks <- struct{}{}:
			default:
				f.skipped.Add(1)
			}
		}
	}
}

func (f *fixedRate) p99(phase string) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := slices.Clone(f.lat[phase])
	if len(l) == 0 {
		return 0
	}
	slices.Sort(l)
	return l[len(l)*99/100]
}

// reloadLoadConfig routes / to service main and adds route extra; invalid
// names an unknown service, so the file is rejected with a position.
func reloadLoadConfig(a, b, main string, extra int, invalid bool) string {
	bad := ""
	if invalid {
		bad = `
http_route "broken" {
  entrypoints = ["web"]
  path        = "/broken"
  service     = "no-such-service"
}
`
	}
	return hcl(`
global { grace_period = "2s" }
admin {
  address = "127.0.0.1:0"
  pprof   = true # the goroutine dump if the count does not settle
}
entrypoint "web" { address = "127.0.0.1:0" }
http_route "main" {
  entrypoints = ["web"]
  path_prefix = "/"
  service     = %q
}
http_route "extra%d" {
  entrypoints = ["web"]
  path        = "/extra%d"
  service     = "b"
}
%s
service "a" {
  backend "http://%s" {}
  idle_conn_timeout = "1s"
}
service "b" {
  backend "http://%s" {}
  idle_conn_timeout = "1s"
}
`, main, extra, extra, bad, a, b)
}

// TestReloadUnderLoad reloads 50 times by SIGHUP (10 of them invalid
// configurations) while HTTP/1.1 at 500 req/s and HTTP/2 at 100 req/s run:
// no request fails, every invalid file is rejected with its diagnostics,
// and the process's file descriptors return to their baseline.
func TestReloadUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("reload under load runs ~20s")
	}
	a, b := startHTTPBackend(t, "a"), startHTTPBackend(t, "b")
	p := startReloadable(t, reloadLoadConfig(a.addr, b.addr, "a", 0, false))
	url := "http://" + p.addr("web")
	pid := p.cmd.Process.Pid

	h1, h2 := newH1Client(t), newH2CClient(t)
	closeIdle := func() {
		h1.Transport.(*http.Transport).CloseIdleConnections()
		h2.CloseIdleConnections()
	}
	// The floor: no client connection, no idle backend connection (they
	// time out after 1s).
	settledFDs := func(atMost int) int {
		deadline := time.Now().Add(20 * time.Second)
		prev, stable := -1, 0
		for {
			n := fdCount(t, pid)
			if atMost > 0 && n <= atMost {
				return n
			}
			if n == prev {
				stable++
			} else {
				stable = 0
			}
			if atMost == 0 && stable >= 10 {
				return n
			}
			if time.Now().After(deadline) {
				return n
			}
			prev = n
			time.Sleep(250 * time.Millisecond)
		}
	}

	l1, l2 := newFixedRate("http/1.1"), newFixedRate("h2c")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { l1.run(ctx, h1, url, 500, 32) })
	wg.Go(func() { l2.run(ctx, h2, url, 100, 8) })
	stopLoad := func() {
		cancel()
		wg.Wait()
	}
	defer stopLoad()

	// Warm-up (both backends used), then 2s of baseline without reloads.
	time.Sleep(time.Second)
	if !p.sighup(t, reloadLoadConfig(a.addr, b.addr, "b", 0, false)) {
		t.Fatal("warm-up reload rejected")
	}
	time.Sleep(500 * time.Millisecond)
	if !p.sighup(t, reloadLoadConfig(a.addr, b.addr, "a", 0, false)) {
		t.Fatal("warm-up reload rejected")
	}
	l1.setPhase("baseline")
	l2.setPhase("baseline")
	time.Sleep(2 * time.Second)

	l1.setPhase("reloading")
	l2.setPhase("reloading")
	start := time.Now()
	rejected, viaAdmin := 0, 0
	admin := p.adminAddr()
	for i := 1; i <= 50; i++ {
		invalid := i%5 == 0
		main := []string{"a", "b"}[i%2]
		src := reloadLoadConfig(a.addr, b.addr, main, i, invalid)
		var accepted bool
		if i%3 == 0 {
			// Every third through the admin endpoint.
			writeConfig(t, p.file, src)
			code, got := postReload(t, admin)
			if accepted = code == http.StatusOK; !accepted && code != http.StatusBadRequest {
				t.Fatalf("POST /reload: %d %v", code, got)
			}
			viaAdmin++
		} else {
			accepted = p.sighup(t, src)
		}
		if accepted == invalid {
			t.Fatalf("reload %d (invalid=%v): accepted=%v", i, invalid, accepted)
		}
		if !accepted {
			rejected++
		}
		time.Sleep(200 * time.Millisecond)
	}
	reloadTime := time.Since(start)
	l1.setPhase("after")
	l2.setPhase("after")
	time.Sleep(time.Second)
	stopLoad()

	if rejected != 10 {
		t.Fatalf("%d configurations rejected, want 10", rejected)
	}
	// Every rejection logged its diagnostic with file:line:col.
	diag := fmt.Sprintf(`"diagnostic":"%s:`, p.file)
	if n := strings.Count(p.log.String(), `unknown service \"no-such-service\"`); n < 10 {
		t.Errorf("%d diagnostics about the unknown service logged, want 10", n)
	}
	if !strings.Contains(p.log.String(), diag) {
		t.Errorf("no diagnostic with the file's position (%s) in the log", diag)
	}
	for _, l := range []*fixedRate{l1, l2} {
		t.Logf("%s: %d ok, %d failed, %d ticks skipped (all workers busy); p99 baseline %v, during reloads %v, after %v",
			l.name, l.ok.Load(), l.failed.Load(), l.skipped.Load(), l.p99("baseline"), l.p99("reloading"), l.p99("after"))
		if l.failed.Load() > 0 {
			t.Errorf("%s: %d requests failed across reloads: %v", l.name, l.failed.Load(), l.errs)
		}
		if l.ok.Load() == 0 {
			t.Errorf("%s: no request succeeded", l.name)
		}
	}
	t.Logf("50 reloads (%d by POST /reload, the others by SIGHUP) in %v", viaAdmin, reloadTime)

	// Descriptors and goroutines: after the grace period (2s) and the
	// backends' idle timeout (1s) the process holds what a fresh one on the
	// same configuration holds.
	closeIdle()
	base, baseG := baseline(t, a.addr, b.addr)
	after := settledFDs(base)
	if after > base {
		t.Errorf("file descriptors: %d after the reloads, %d at the baseline", after, base)
	}
	afterG := goroutines(t, admin)
	for deadline := time.Now().Add(10 * time.Second); afterG > baseG && time.Now().Before(deadline); {
		time.Sleep(250 * time.Millisecond)
		afterG = goroutines(t, admin)
	}
	if afterG > baseG {
		t.Errorf("goroutines: %d after the reloads, %d at the baseline; dump:\n%s", afterG, baseG, goroutineDump(admin))
	}
	t.Logf("file descriptors: baseline %d, after reloads %d; goroutines: baseline %d, after %d", base, after, baseG, afterG)
}

// goroutines is go_goroutines from the admin endpoint, scraped without
// keeping a connection open (it would be a descriptor and a goroutine).
func goroutines(t *testing.T, admin string) int {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: ioTimeout}).Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return int(n)
		}
	}
	t.Fatal("no go_goroutines in /metrics")
	return 0
}

// baseline is the descriptor and goroutine counts of a process with the
// first configuration, no client connection and no idle backend
// connection: a fresh proxynow on the same configuration would hold as
// many, so they are measured on one.
func baseline(t *testing.T, a, b string) (fds, gs int) {
	t.Helper()
	fresh := startReloadable(t, reloadLoadConfig(a, b, "a", 0, false))
	c := newH1Client(t)
	for range 10 {
		mustDo(t, c, "http://"+fresh.addr("web"), reqSpec{})
	}
	c.Transport.(*http.Transport).CloseIdleConnections()
	pid := fresh.cmd.Process.Pid
	deadline := time.Now().Add(20 * time.Second)
	prev, stable := -1, 0
	for {
		n := fdCount(t, pid)
		if n == prev {
			stable++
		} else {
			stable = 0
		}
		if stable >= 8 || time.Now().After(deadline) {
			return n, goroutines(t, fresh.adminAddr())
		}
		prev = n
		time.Sleep(250 * time.Millisecond)
	}
}

// goroutineDump is the process's goroutine profile (pprof debug=1), or why
// it could not be had.
func goroutineDump(admin string) string {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + admin + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err.Error()
	}
	return string(b)
}
