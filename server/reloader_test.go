package server

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/proxynow/proxynow/config"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// reloaderFixture is a server started from a file, with its Reloader;
// loads reports each load attempt's error (nil for a valid file).
type reloaderFixture struct {
	dir, file string
	srv       *Server
	rl        *Reloader
	reg       *prometheus.Registry
	log       *syncBuf
	loads     chan error
}

func newReloaderFixture(t *testing.T, src string, watch bool) *reloaderFixture {
	t.Helper()
	f := &reloaderFixture{dir: t.TempDir(), reg: prometheus.NewRegistry(), log: &syncBuf{}, loads: make(chan error, 16)}
	f.file = filepath.Join(f.dir, "proxynow.hcl")
	if watch {
		src = "global { watch = true }\n" + src
	}
	if err := os.WriteFile(f.file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(f.file)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(f.log, nil))
	if f.srv, err = New(cfg, log); err != nil {
		t.Fatal(err)
	}
	if err := f.srv.Start(); err != nil {
		t.Fatal(err)
	}
	f.rl, err = NewReloader(f.srv, ReloaderOptions{
		Files: []string{f.file},
		Load: func(files ...string) (*config.Config, error) {
			c, err := config.Load(files...)
			if err != nil {
				f.loads <- err
			}
			return c, err
		},
		Applied:    func(*config.Config) { f.loads <- nil },
		Registerer: f.reg,
		Logger:     log,
		Debounce:   50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.rl.Close()
		f.srv.Close()
		if t.Failed() {
			t.Logf("log:\n%s", f.log.String())
		}
	})
	return f
}

func (f *reloaderFixture) count(result string) float64 {
	return testutil.ToFloat64(f.rl.reloads.WithLabelValues(result))
}

// replace writes src to a temporary file and renames it over the config
// file, as editors and config management tools do.
func (f *reloaderFixture) replace(t *testing.T, src string) {
	t.Helper()
	tmp := filepath.Join(f.dir, ".proxynow.hcl.tmp")
	if err := os.WriteFile(tmp, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, f.file); err != nil {
		t.Fatal(err)
	}
}

func (f *reloaderFixture) nextLoad(t *testing.T) error {
	t.Helper()
	select {
	case err := <-f.loads:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("no reload within 20s")
		return nil
	}
}

const respondSrc = `
entrypoint "web" { address = "127.0.0.1:0" }
http_route "r" {
  entrypoints = ["web"]
  service     = "s"
}
service "s" {
  respond { body = "%s" }
}
`

func TestReloaderRejectsInvalidAndCounts(t *testing.T) {
	f := newReloaderFixture(t, fmt.Sprintf(respondSrc, "v1"), false)
	before := testutil.ToFloat64(f.rl.lastSuccess)
	if err := os.WriteFile(f.file, []byte(fmt.Sprintf(respondSrc, "v2")+"\nservice \"x\" { bogus = 1 }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ds, err := f.rl.Reload(context.Background(), "test")
	<-f.loads
	if err == nil || len(ds) == 0 {
		t.Fatalf("Reload of an invalid file = %v, %v", ds, err)
	}
	pos := f.file + ":11:"
	if !strings.Contains(ds[0].Error(), pos) || !strings.Contains(f.log.String(), pos) {
		t.Fatalf("diagnostic %q (or the log) lacks the position %s:\n%s", ds[0].Error(), pos, f.log.String())
	}
	if f.count(ResultFailure) != 1 || f.count(ResultSuccess) != 0 {
		t.Fatalf("failure=%v success=%v", f.count(ResultFailure), f.count(ResultSuccess))
	}
	if f.srv.Config().Services[0].Respond.Body != "v1" {
		t.Fatal("an invalid configuration was applied")
	}
	if err := os.WriteFile(f.file, []byte(fmt.Sprintf(respondSrc, "v2")), 0o600); err != nil {
		t.Fatal(err)
	}
	if ds, err := f.rl.Reload(context.Background(), "test"); err != nil {
		t.Fatalf("valid reload: %v %v", ds, err)
	}
	<-f.loads
	if f.count(ResultSuccess) != 1 || testutil.ToFloat64(f.rl.lastSuccess) < before {
		t.Fatalf("success=%v", f.count(ResultSuccess))
	}
	if f.srv.Config().Services[0].Respond.Body != "v2" {
		t.Fatal("valid configuration not applied")
	}
	if n, err := testutil.GatherAndCount(f.reg, "proxynow_config_reloads_total", "proxynow_config_last_reload_success_timestamp_seconds"); err != nil || n != 3 {
		t.Fatalf("registered series: %d, %v", n, err)
	}
	if !strings.Contains(f.log.String(), "configuration reloaded") {
		t.Fatalf("no reload log line:\n%s", f.log.String())
	}
}

func TestWatchRenameReplace(t *testing.T) {
	f := newReloaderFixture(t, fmt.Sprintf(respondSrc, "v1"), true)
	f.replace(t, "global { watch = true }\n"+fmt.Sprintf(respondSrc, "v2"))
	if err := f.nextLoad(t); err != nil {
		t.Fatalf("reload after rename: %v", err)
	}
	if f.srv.Config().Services[0].Respond.Body != "v2" {
		t.Fatal("change not applied")
	}
	// An invalid edit is rejected and changes nothing.
	f.replace(t, "global { watch = true }\nservice {\n")
	if err := f.nextLoad(t); err == nil {
		t.Fatal("invalid edit loaded")
	}
	// The load's error is reported before the reload is counted.
	for deadline := time.Now().Add(10 * time.Second); f.count(ResultFailure) != 1 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if f.srv.Config().Services[0].Respond.Body != "v2" || f.count(ResultFailure) != 1 {
		t.Fatalf("invalid edit: body %q, failures %v", f.srv.Config().Services[0].Respond.Body, f.count(ResultFailure))
	}
	// Turning watch off stops the watcher (from its own reload).
	f.replace(t, fmt.Sprintf(respondSrc, "v3"))
	if err := f.nextLoad(t); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.log.String(), "file watch stopped") {
		t.Fatalf("watch not stopped:\n%s", f.log.String())
	}
}

// TestWatchSymlinkSwap: Kubernetes mounts a ConfigMap as file -> ..data/file
// with ..data a symlink to a timestamped directory that is swapped by a
// rename of a new symlink.
func TestWatchSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	write := func(ts, body string) {
		d := filepath.Join(dir, ts)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		src := "global { watch = true }\n" + fmt.Sprintf(respondSrc, body)
		if err := os.WriteFile(filepath.Join(d, "proxynow.hcl"), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("..2026_01", "v1")
	if err := os.Symlink("..2026_01", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "proxynow.hcl")
	if err := os.Symlink(filepath.Join("..data", "proxynow.hcl"), file); err != nil {
		t.Fatal(err)
	}
	f := newReloaderFixture(t, fmt.Sprintf(respondSrc, "unused"), true)
	// Point the fixture at the symlinked file.
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	f.rl.mu.Lock()
	f.rl.opts.Files = []string{file}
	f.rl.watcher.set(watchedFiles(f.rl.opts.Files, cfg))
	f.rl.mu.Unlock()

	write("..2026_02", "v2")
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink("..2026_02", tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := f.nextLoad(t); err != nil {
		t.Fatal(err)
	}
	if got := f.srv.Config().Services[0].Respond.Body; got != "v2" {
		t.Fatalf("body %q after the symlink swap", got)
	}
}

// TestFingerprintDirectory: a configuration directory changes when one of
// its *.hcl files appears, changes or goes, not for other files.
func TestFingerprintDirectory(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a.hcl", "a")
	fp := fingerprintFile(dir)
	write("notes.txt", "x")
	if fingerprintFile(dir) != fp {
		t.Fatal("a non-.hcl file changed the fingerprint")
	}
	for _, step := range []func(){
		func() { write("b.hcl", "b") },
		func() { write("a.hcl", "a2") },
		func() { os.Remove(filepath.Join(dir, "b.hcl")) },
	} {
		step()
		next := fingerprintFile(dir)
		if next == fp {
			t.Fatal("change not seen")
		}
		fp = next
	}
	if fingerprintFile(filepath.Join(dir, "missing.hcl")) == fingerprintFile(filepath.Join(dir, "a.hcl")) {
		t.Fatal("a missing file hashes like a present one")
	}
}
