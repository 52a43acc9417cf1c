//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// TestMain lets the test binary serve as the HTTP backend process, as the
// harness's own executable does (backend_http.go).
func TestMain(m *testing.M) {
	maybeServeBackend()
	os.Exit(m.Run())
}

// TestSmoke runs the harness in -short mode (every scenario for about a
// second against proxynow alone) so that `make test` keeps it working. It
// needs no peer installed. It checks that the harness works, not how fast
// proxynow is: speed is never asserted in a test.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds proxynow and drives it for a few seconds")
	}
	defer goleak.VerifyNone(t)
	jsonPath := filepath.Join(t.TempDir(), "bench.json")
	var stdout, stderr bytes.Buffer
	args := []string{"-short", "-json", jsonPath}
	// A prebuilt binary (e.g. from a clean checkout) instead of building the
	// working tree's ./cmd/proxynow.
	if bin := os.Getenv("PROXYNOW_BENCH_BIN"); bin != "" {
		args = append(args, "-proxynow", bin)
	}
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("bench -short exited %d\nstderr:\n%s\nstdout:\n%s", code, stderr.String(), stdout.String())
	}
	var rep report
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("bad JSON: %v", err)
	}
	if len(rep.Scenarios) != len(scenarios) {
		t.Fatalf("JSON has %d scenarios, want %d", len(rep.Scenarios), len(scenarios))
	}
	for _, sr := range rep.Scenarios {
		t.Run(sr.Name, func(t *testing.T) {
			if len(sr.Targets) != 1 || sr.Targets[0].Target != "proxynow" {
				t.Fatalf("targets = %+v, want proxynow alone", sr.Targets)
			}
			tr := sr.Targets[0]
			if tr.Error != "" || len(tr.Rounds) != 1 || tr.Rounds[0].Work <= 0 {
				t.Fatalf("proxynow: error %q, rounds %+v", tr.Error, tr.Rounds)
			}
			// A memory scenario measures no CPU (once: one window, no load).
			if sc, _ := scenarioByName(sr.Name); (tr.Rounds[0].CPU <= 0 && !sc.once) || tr.PeakRSS <= 0 {
				t.Errorf("proxynow: cpu %v s, peak RSS %d: /proc accounting found nothing", tr.Rounds[0].CPU, tr.PeakRSS)
			}
			if !strings.Contains(stdout.String(), "### "+sr.Title) {
				t.Errorf("Markdown lacks the %q table", sr.Title)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "defaults"},
		{name: "unknown scenario", args: []string{"-scenarios", "tcp-bulk,nope"}, wantErr: `unknown scenario "nope"`},
		{name: "unknown target", args: []string{"-targets", "traefik"}, wantErr: `unknown target "traefik"`},
		{name: "zero rounds", args: []string{"-rounds", "0"}, wantErr: "-rounds"},
		{name: "huge window", args: []string{"-window", "100000"}, wantErr: "-window"},
		{name: "no idle connections", args: []string{"-idle-conns", "0"}, wantErr: "-idle-conns"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			_, err := parseFlags(tc.args, &stderr)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestShortSelectsProxynowAlone(t *testing.T) {
	c, err := parseFlags([]string{"-short", "-targets", "nginx,haproxy"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.targets) != 1 || c.targets[0] != "proxynow" || c.rounds != 1 || len(c.scenarios) != len(scenarios) {
		t.Fatalf("short: targets %v rounds %d scenarios %d", c.targets, c.rounds, len(c.scenarios))
	}
}

// The routing table every target gets: one HAProxy map line per route,
// and a wrk script that draws from the same hosts and paths.
func TestRouteTable(t *testing.T) {
	rt := newRouteTable()
	if len(rt.Hosts) != routeHosts || len(rt.Paths) != routePaths {
		t.Fatalf("table %d hosts × %d paths", len(rt.Hosts), len(rt.Paths))
	}
	path, err := writeRouteMap(t.TempDir(), rt)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != routeHosts*routePaths || lines[0] != "h0.bench.test/p0/ backend" || lines[len(lines)-1] != "h999.bench.test/p9/ backend" {
		t.Fatalf("map: %d lines, first %q, last %q", len(lines), lines[0], lines[len(lines)-1])
	}
	if !strings.Contains(wrkRoutingScript, "math.random(0, 999)") || !strings.Contains(wrkRoutingScript, "math.random(0, 9)") {
		t.Fatalf("wrk script does not draw from the table:\n%s", wrkRoutingScript)
	}
}
