//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// The profiling build adds one file to package main of cmd/proxynow
// through go build -overlay, so the source tree is untouched and the
// measured binary carries no profiler: it serves net/http/pprof on the
// address in PROXYNOW_BENCH_PPROF.
const pprofOverlaySrc = `package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	if addr := os.Getenv("PROXYNOW_BENCH_PPROF"); addr != "" {
		go http.ListenAndServe(addr, nil)
	}
}
`

// profileProxynow runs each selected scenario against a profiling build of
// proxynow for -duration and saves a CPU profile per scenario into
// c.pprofDir, for `go tool pprof -top`.
func profileProxynow(c *config, e *env, log io.Writer) error {
	if err := os.MkdirAll(c.pprofDir, 0o755); err != nil {
		return err
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	src := filepath.Join(e.dir, "zz_bench_pprof.go")
	if err := os.WriteFile(src, []byte(pprofOverlaySrc), 0o644); err != nil {
		return err
	}
	ov, _ := json.Marshal(map[string]map[string]string{"Replace": {filepath.Join(root, "cmd", "proxynow", "zz_bench_pprof.go"): src}})
	ovPath := filepath.Join(e.dir, "overlay.json")
	if err := os.WriteFile(ovPath, ov, 0o644); err != nil {
		return err
	}
	bin, err := buildProxynow(e.dir, ovPath)
	if err != nil {
		return err
	}
	for _, sc := range c.scenarios {
		if !(proxynowTarget{}).supports(sc.kind) {
			continue
		}
		if err := profileOne(c, e, bin, sc, log); err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
	}
	return nil
}

func profileOne(c *config, e *env, bin string, sc *scenario, log io.Writer) error {
	b, err := sc.newBackend()
	if err != nil {
		return err
	}
	defer b.close()
	port, err := freePort()
	if err != nil {
		return err
	}
	pport, err := freePort()
	if err != nil {
		return err
	}
	dir := filepath.Join(e.dir, "pprof-"+sc.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	r := route{Kind: sc.kind, Listen: fmt.Sprintf("127.0.0.1:%d", port), Backend: b.addr()}
	p, err := startProxynow(bin, dir, r, e, "proxynow-pprof", []string{fmt.Sprintf("PROXYNOW_BENCH_PPROF=127.0.0.1:%d", pport)})
	if err != nil {
		return err
	}
	defer p.stop()
	if _, err := sc.load(b, r.Listen, c.warmup, c.opts, &meter{}); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	secs := max(1, int(c.duration.Seconds()))
	type got struct {
		body []byte
		err  error
	}
	ch := make(chan got, 1)
	go func() {
		cl := &http.Client{Timeout: time.Duration(secs+30) * time.Second}
		resp, err := cl.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", pport, secs))
		if err != nil {
			ch <- got{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("pprof: %s", resp.Status)
		}
		ch <- got{body, err}
	}()
	// Load a little longer than the profile so it covers only steady state.
	if _, err := sc.load(b, r.Listen, time.Duration(secs)*time.Second+500*time.Millisecond, c.opts, &meter{}); err != nil {
		return err
	}
	g := <-ch
	if g.err != nil {
		return g.err
	}
	out := filepath.Join(c.pprofDir, sc.name+".pprof")
	if err := os.WriteFile(out, g.body, 0o644); err != nil {
		return err
	}
	// Keep the binary beside the profile so symbols resolve after the temp dir is gone.
	if bb, err := os.ReadFile(bin); err == nil {
		_ = os.WriteFile(filepath.Join(c.pprofDir, "proxynow-pprof"), bb, 0o755)
	}
	fmt.Fprintf(log, "bench: profile %s: go tool pprof -top %s\n", sc.name, out)
	return nil
}
