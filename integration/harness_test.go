//go:build linux

// Package integration runs the proxynow binary end to end against real
// clients and servers on loopback. Helpers live in this file; each
// *_test.go file covers one area of the product contract. Linux only, as
// the tools .ci/run installs are.
package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Timeouts for waiting on readiness are generous: a 2-core machine running
// the whole suite can be slow. Tight bounds live in the tests that the
// contract gives a number for.
const (
	readyTimeout = 30 * time.Second
	exitTimeout  = 15 * time.Second
	ioTimeout    = 30 * time.Second
)

var (
	binPath    string // the proxynow binary built by TestMain
	moduleRoot string // directory holding go.mod
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "proxynow-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration: tempdir:", err)
		os.Exit(1)
	}
	if err := build(dir); err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))
}

// build compiles ./cmd/proxynow once into dir.
func build(dir string) error {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return errors.New("go env GOMOD: not inside a module")
	}
	moduleRoot = filepath.Dir(gomod)
	binPath = filepath.Join(dir, "proxynow")
	cmd := exec.Command("go", "build", "-o", binPath, "./cmd/proxynow")
	cmd.Dir = moduleRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/proxynow: %w\n%s", err, out)
	}
	return nil
}

// ---------------------------------------------------------------------------
// proxynow process

// proc is one running proxynow process with its stderr parsed as JSON logs.
type proc struct {
	t       testing.TB
	cmd     *exec.Cmd
	log     *logSink
	done    chan struct{} // closed when the process has exited
	exitErr error
}

// logSink collects stderr, parses each complete line as a slog JSON record
// and remembers the "listening" addresses.
type logSink struct {
	mu      sync.Mutex
	all     bytes.Buffer
	partial []byte
	addrs   map[string]string // entrypoint -> bound address (and "entrypoint/network")
	started chan struct{}
	once    sync.Once
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.all.Write(p)
	s.partial = append(s.partial, p...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		s.line(s.partial[:i])
		s.partial = s.partial[i+1:]
	}
	return len(p), nil
}

func (s *logSink) line(b []byte) {
	var rec struct {
		Msg        string `json:"msg"`
		Entrypoint string `json:"entrypoint"`
		Network    string `json:"network"`
		Address    string `json:"address"`
	}
	if json.Unmarshal(b, &rec) != nil {
		return
	}
	switch rec.Msg {
	case "listening":
		s.addrs[rec.Entrypoint] = rec.Address
		s.addrs[rec.Entrypoint+"/"+rec.Network] = rec.Address
	case "started":
		s.once.Do(func() { close(s.started) })
	}
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.all.String()
}

// writeFile writes content to name in a fresh temp directory and returns the path.
func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// launchProxy starts `proxynow run -config FILE` with hcl (a JSON log block is
// prepended when hcl has none) and returns at once. The process is killed in
// t.Cleanup if it is still running.
func launchProxy(t testing.TB, hcl string) *proc {
	t.Helper()
	if !strings.Contains(hcl, "log {") {
		hcl = "log {\n  level  = \"info\"\n  format = \"json\"\n}\n" + hcl
	}
	cfg := writeFile(t, "proxynow.hcl", hcl)
	p := launchProxyArgs(t, "run", "-config", cfg)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("config:\n%s", hcl)
		}
	})
	return p
}

// launchProxyArgs starts proxynow with args and returns at once.
func launchProxyArgs(t testing.TB, args ...string) *proc {
	t.Helper()
	p := &proc{
		t:    t,
		log:  &logSink{addrs: map[string]string{}, started: make(chan struct{})},
		done: make(chan struct{}),
	}
	p.cmd = exec.Command(binPath, args...)
	p.cmd.Stdout = p.log
	p.cmd.Stderr = p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start proxynow: %v", err)
	}
	go func() {
		p.exitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("proxynow %v output:\n%s", args, tail(p.log.String(), 8000))
		}
	})
	return p
}

// startProxy launches proxynow and waits for its "started" log line.
func startProxy(t testing.TB, hcl string) *proc {
	t.Helper()
	return waitStarted(t, launchProxy(t, hcl))
}

// startProxyArgs is startProxy with explicit command-line arguments.
func startProxyArgs(t testing.TB, args ...string) *proc {
	t.Helper()
	return waitStarted(t, launchProxyArgs(t, args...))
}

func waitStarted(t testing.TB, p *proc) *proc {
	t.Helper()
	select {
	case <-p.log.started:
	case <-p.done:
		t.Fatalf("proxynow exited before \"started\" (%v):\n%s", p.exitErr, p.log.String())
	case <-time.After(readyTimeout):
		t.Fatalf("proxynow did not log \"started\" within %v:\n%s", readyTimeout, p.log.String())
	}
	return p
}

// addr returns the bound address that proxynow logged for an entrypoint.
func (p *proc) addr(entrypoint string) string {
	p.t.Helper()
	p.log.mu.Lock()
	a, ok := p.log.addrs[entrypoint]
	p.log.mu.Unlock()
	if !ok {
		p.t.Fatalf("no \"listening\" log line for entrypoint %q:\n%s", entrypoint, p.log.String())
	}
	return a
}

func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// wait waits up to d for the process to exit and returns its exit code.
func (p *proc) wait(d time.Duration) (code int, exited bool) {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), true
	case <-time.After(d):
		return 0, false
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// runCLI runs the binary to completion (bounded by exitTimeout) and returns
// its exit code, stdout and stderr.
func runCLI(t testing.TB, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runCLIIn(t, "", args...)
}

// runCLIIn is runCLI with the working directory set to dir.
func runCLIIn(t testing.TB, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	cmd := exec.Command(binPath, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Start(); err != nil {
		t.Fatalf("start proxynow %v: %v", args, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(exitTimeout):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("proxynow %v did not exit within %v", args, exitTimeout)
	}
	return cmd.ProcessState.ExitCode(), o.String(), e.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// ---------------------------------------------------------------------------
// outside tools and helper processes

// requireTool finds an outside tool. Missing tools skip the test only when
// CI is unset; under CI they fail it.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p
		}
	}
	if ci, set := os.LookupEnv("CI"); set {
		t.Fatalf("%s is not installed but CI=%q is set: it is required there", name, ci)
	}
	t.Skipf("%s is not installed; skipping because CI is unset (with CI set this test fails)", name)
	return ""
}

// startHelper starts an outside program, killed and reaped in t.Cleanup.
func startHelper(t testing.TB, name string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, log: &logSink{addrs: map[string]string{}, started: make(chan struct{})}, done: make(chan struct{})}
	p.cmd = exec.Command(name, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.exitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), tail(p.log.String(), 4000))
		}
	})
	return p
}

// freePort returns a loopback port free for both TCP and UDP at the time of
// the call. Only for outside programs that cannot bind :0 and report it.
func freePort(t testing.TB) int {
	t.Helper()
	for range 50 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		pc.Close()
		if err == nil {
			ln.Close()
			return port
		}
	}
	t.Fatal("no free loopback port found in 50 tries")
	return 0
}

// closedAddr returns a loopback TCP address nothing listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

// waitDial polls until addr accepts a TCP connection.
func waitDial(t testing.TB, addr string, d time.Duration, dead <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		select {
		case <-dead:
			t.Fatalf("process serving %s exited", addr)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not accepting connections after %v", addr, d)
}
