package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func write(t *testing.T, name, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const good = `
entrypoint "e" { address = "127.0.0.1:0" }
tcp_route "r" {
  entrypoints = ["e"]
  service     = "s"
}
service "s" {
  backend "127.0.0.1:1" {}
}
`

const shadowed = `entrypoint "web" { address = "127.0.0.1:0" }
http_route "all" {
  entrypoints = ["web"]
  priority    = 100
  service     = "s"
}
http_route "api" {
  entrypoints = ["web"]
  path_prefix = "/api/"
  service     = "s"
}
service "s" {
  respond { body = "x" }
}
`

// TestValidateWarningsInFileOrder: a shadowed route's warning (found by
// compiling the routes, after the load) comes out among the
// configuration's own warnings in file order, not after them.
func TestValidateWarningsInFileOrder(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		// a.hcl: the route warning (line 7) before a config warning (line 15).
		"a.hcl": shadowed + `service "spare" {
  respond { body = "y" }
}
`,
		// b.hcl: a config warning, after every one of a.hcl.
		"b.hcl": "entrypoint \"spare\" { address = \"127.0.0.1:0\" }\n",
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"validate", dir}, &stdout, &stderr, nil); code != exitOK {
		t.Fatalf("exit %d\n%s", code, &stderr)
	}
	want := []string{
		`a.hcl:7:12: warning: entrypoint "web": http_route "api" can never match`,
		`a.hcl:15:9: warning: service "spare" is not used by any route`,
		`b.hcl:1:12: warning: entrypoint "spare" is not used by any route`,
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("stderr:\n%s\nwant %d warnings", &stderr, len(want))
	}
	for i, w := range want {
		if !strings.Contains(lines[i], filepath.Join(dir, w)) {
			t.Errorf("warning %d: %s\nwant %s...", i+1, lines[i], w)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the logger and the test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestCommands(t *testing.T) {
	bad := write(t, "bad.hcl", "entrypoint \"e\" {\n  adress = \":1\"\n}\n")
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // regexp
		stderr string // regexp
	}{
		{name: "no args", args: nil, code: exitConfig, stderr: "Usage:"},
		{name: "help", args: []string{"--help"}, code: exitOK, stdout: "Usage:"},
		{name: "unknown command", args: []string{"serve"}, code: exitConfig, stderr: `unknown command "serve"`},
		{name: "version", args: []string{"version"}, code: exitOK, stdout: `^proxynow \S+\n$`},
		{name: "validate good", args: []string{"validate", write(t, "good.hcl", good)}, code: exitOK, stdout: "configuration OK"},
		{name: "validate bad", args: []string{"validate", bad}, code: exitConfig,
			stderr: `bad\.hcl:2:3: .*"adress".*did you mean "address"`},
		{name: "validate warns of a shadowed route", args: []string{"validate", write(t, "shadow.hcl", shadowed)}, code: exitOK,
			stdout: "configuration OK", stderr: `(?m)^\S*shadow\.hcl:7:12: warning: entrypoint "web": http_route "api" can never match: http_route "all" \(\S*shadow\.hcl:2:12\) takes every request it would\n`},
		{name: "validate missing file", args: []string{"validate", "/nonexistent.hcl"}, code: exitConfig, stderr: "nonexistent"},
		{name: "validate no file", args: []string{"validate"}, code: exitConfig, stderr: "Usage:"},
		{name: "validate help", args: []string{"validate", "-help"}, code: exitOK, stderr: "Usage:"},
		{name: "run bad config", args: []string{"run", "-config", bad}, code: exitConfig, stderr: `bad\.hcl:2:3`},
		{name: "run stray argument", args: []string{"run", "x.hcl"}, code: exitConfig, stderr: "use -config"},
		{name: "run bad flag", args: []string{"run", "-nope"}, code: exitConfig, stderr: "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tt.args, &stdout, &stderr, nil)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, &stdout, &stderr)
			}
			if tt.stdout != "" && !regexp.MustCompile(tt.stdout).MatchString(stdout.String()) {
				t.Errorf("stdout %q does not match %q", &stdout, tt.stdout)
			}
			if tt.stderr != "" && !regexp.MustCompile(tt.stderr).MatchString(stderr.String()) {
				t.Errorf("stderr %q does not match %q", &stderr, tt.stderr)
			}
		})
	}
}

func TestRunServesUntilSignal(t *testing.T) {
	cfg := write(t, "run.hcl", good)
	stop := make(chan os.Signal, 2)
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- run([]string{"run", "-config", cfg}, &bytes.Buffer{}, &stderr, stop) }()

	addr := waitListening(t, &stderr)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c.Close()
	stop <- syscall.SIGHUP // not a stop: a reload
	stop <- syscall.SIGTERM
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("exit %d, want 0\n%s", code, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after SIGTERM")
	}
	for _, want := range []string{"configuration reloaded", "shutting down", "stopped"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, stderr.String())
		}
	}
}

func TestRunPortInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := write(t, "busy.hcl", strings.Replace(good, "127.0.0.1:0", busy.Addr().String(), 1))
	var stderr bytes.Buffer
	if code := run([]string{"run", "-config", cfg}, &bytes.Buffer{}, &stderr, make(chan os.Signal)); code != exitRuntime {
		t.Fatalf("exit %d, want %d", code, exitRuntime)
	}
	if !strings.Contains(stderr.String(), `entrypoint \"e\"`) || !strings.Contains(stderr.String(), busy.Addr().String()) {
		t.Fatalf("error does not name the entrypoint and address:\n%s", &stderr)
	}
}

var listening = regexp.MustCompile(`msg=listening entrypoint=e network=tcp address=(\S+)`)

func waitListening(t *testing.T, log *syncBuffer) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if m := listening.FindStringSubmatch(log.String()); m != nil {
			return m[1]
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no listening line in:\n%s", log.String())
	return ""
}
