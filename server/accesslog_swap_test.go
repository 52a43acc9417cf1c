package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// swapConfig is an HTTP entrypoint answering every request, after the log
// block (or nothing).
const swapConfig = `
%s
entrypoint "web" { address = "127.0.0.1:0" }
http_route "all" {
  entrypoints = ["web"]
  service     = "hello"
}
service "hello" {
  respond { body = "hello" }
}
`

// withAccessLog is swapConfig with log { access { ... } }.
func withAccessLog(path, format string, buffer int) string {
	return fmt.Sprintf(swapConfig, fmt.Sprintf("log {\n  access {\n    path = %q\n    format = %q\n    buffer = %d\n  }\n}", path, format, buffer))
}

var noAccessLog = fmt.Sprintf(swapConfig, "")

// logLine is an access log line: the request's path and the line's format.
type logLine struct{ path, format string }

var clfRequest = regexp.MustCompile(`^127\.0\.0\.1 - - \[[^]]+\] "GET (\S+) HTTP/1\.1" 200 5$`)

// fileLines reads the access log at path ("": none) and fails on a line
// that is neither whole JSON nor whole common format (a torn line).
func fileLines(t *testing.T, path string) []logLine {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []logLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var j struct{ Path string }
		if err := json.Unmarshal(sc.Bytes(), &j); err == nil && j.Path != "" {
			out = append(out, logLine{j.Path, "json"})
		} else if m := clfRequest.FindStringSubmatch(sc.Text()); m != nil {
			out = append(out, logLine{m[1], "common"})
		} else {
			t.Fatalf("%s: torn or unknown line %q", filepath.Base(path), sc.Text())
		}
	}
	return out
}

// getPath makes a request with c. The HTTP/1 server sends a short response
// once the handler (the access log's Observer) has returned, so when the
// client has it the request's line is queued.
func getPath(t *testing.T, c *http.Client, s *Server, path string) {
	t.Helper()
	resp, err := c.Get("http://" + s.Addr("web").String() + path)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
}

func wantLines(t *testing.T, path string, want ...logLine) {
	t.Helper()
	got := fileLines(t, path)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s holds %v, want %v", filepath.Base(path), got, want)
	}
}

// fdsOn counts this process's descriptors open on path (Linux).
func fdsOn(t *testing.T, path string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && target == path {
			n++
		}
	}
	return n
}

// TestReloadSwitchesAccessLog reloads between requests: adding the block
// starts the log, a new path, format or buffer moves the lines that follow
// (and only them) to the new sink in the new format, the old file is
// complete and closed when Reload returns, and removing the block stops
// the log. The line counter keeps counting across the swaps.
func TestReloadSwitchesAccessLog(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	s := started(t, noAccessLog)
	c := &http.Client{Timeout: 20 * time.Second}
	defer c.CloseIdleConnections()
	getPath(t, c, s, "/off")

	reload(t, s, withAccessLog(a, "json", 64)) // added
	getPath(t, c, s, "/a1")
	getPath(t, c, s, "/a2")
	waitLines(t, a, 2)

	reload(t, s, withAccessLog(b, "common", 64)) // path and format
	wantLines(t, a, logLine{"/a1", "json"}, logLine{"/a2", "json"})
	if runtime.GOOS == "linux" && fdsOn(t, a) != 0 {
		t.Errorf("%s still open after the reload that replaced it", a)
	}
	getPath(t, c, s, "/b1")
	waitLines(t, b, 1)

	reload(t, s, withAccessLog(b, "common", 128)) // buffer only: same file
	getPath(t, c, s, "/b2")
	reload(t, s, withAccessLog(b, "json", 128)) // format only: same file
	getPath(t, c, s, "/b3")
	waitLines(t, b, 3)
	if runtime.GOOS == "linux" && fdsOn(t, b) != 1 {
		t.Errorf("%s open %d times, want once", b, fdsOn(t, b))
	}

	reload(t, s, noAccessLog) // removed
	if runtime.GOOS == "linux" && fdsOn(t, b) != 0 {
		t.Errorf("%s still open after the reload that removed the log", b)
	}
	getPath(t, c, s, "/off2")
	reload(t, s, noAccessLog)

	wantLines(t, a, logLine{"/a1", "json"}, logLine{"/a2", "json"})
	wantLines(t, b, logLine{"/b1", "common"}, logLine{"/b2", "common"}, logLine{"/b3", "json"})
	lines := s.Metrics().AccessLogLines
	if w, d := testutil.ToFloat64(lines.WithLabelValues("written")), testutil.ToFloat64(lines.WithLabelValues("dropped")); w != 5 || d != 0 {
		t.Errorf("proxynow_accesslog_lines_total written %v dropped %v, want 5 and 0", w, d)
	}
	if _, err := s.Registry().Gather(); err != nil {
		t.Errorf("gather: %v", err)
	}
}

// TestReloadAccessLogUnderLoad swaps the access log (path and format)
// several times while clients keep requests in flight: every request's
// line lands once, whole, in one of the files.
func TestReloadAccessLogUnderLoad(t *testing.T) {
	dir := t.TempDir()
	file := func(i int) string { return filepath.Join(dir, fmt.Sprintf("%d.log", i)) }
	s := started(t, withAccessLog(file(0), "json", 1<<16))
	const clients, swaps = 4, 6
	stop := make(chan struct{})
	var mu sync.Mutex
	sent := map[string]bool{}
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for g := range clients {
		wg.Go(func() {
			c := &http.Client{Timeout: 20 * time.Second}
			defer c.CloseIdleConnections()
			for i := 0; ; i++ {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				p := fmt.Sprintf("/c%d-%d", g, i)
				resp, err := c.Get("http://" + s.Addr("web").String() + p)
				if err != nil {
					errs <- err
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				sent[p] = true
				mu.Unlock()
			}
		})
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(sent) }
	for i := 1; i <= swaps; i++ {
		for n := count(); count() < n+50; {
			time.Sleep(time.Millisecond)
		}
		reload(t, s, withAccessLog(file(i), []string{"json", "common"}[i%2], 1<<16))
	}
	close(stop)
	wg.Wait()
	for range clients {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil { // flushes the last log
		t.Fatal(err)
	}
	seen := map[string]int{}
	for i := 0; i <= swaps; i++ {
		lines := fileLines(t, file(i))
		if len(lines) == 0 {
			t.Errorf("%d.log is empty: the log did not move to it", i)
		}
		for _, l := range lines {
			if f, ok := seen[l.path]; ok {
				t.Errorf("%s logged in %d.log and in %d.log", l.path, f, i)
			}
			seen[l.path] = i
			if want := []string{"json", "common"}[i%2]; l.format != want {
				t.Errorf("%s in %d.log as %s, want %s", l.path, i, l.format, want)
			}
		}
	}
	for p := range sent {
		if _, ok := seen[p]; !ok {
			t.Errorf("no line for %s", p)
		}
	}
	if len(seen) != len(sent) {
		t.Errorf("%d lines for %d requests", len(seen), len(sent))
	}
}

// TestReloadAccessLogBadPath: a new path that cannot be opened fails the
// reload with an error naming it; the old configuration and log stay.
func TestReloadAccessLogBadPath(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.log")
	bad := filepath.Join(dir, "missing", "b.log")
	s := started(t, withAccessLog(a, "json", 64))
	c := &http.Client{Timeout: 20 * time.Second}
	defer c.CloseIdleConnections()
	getPath(t, c, s, "/a1")

	ch, err := s.Reload(parse(t, withAccessLog(bad, "common", 64)))
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("Reload to %s: %v, %v; want an error naming the path", bad, ch, err)
	}
	if got := s.Config().Log.Access.Path; got != a {
		t.Errorf("config's access log path %s after a failed reload, want %s", got, a)
	}
	getPath(t, c, s, "/a2")
	waitLines(t, a, 2)
	wantLines(t, a, logLine{"/a1", "json"}, logLine{"/a2", "json"})
	if runtime.GOOS == "linux" && fdsOn(t, a) != 1 {
		t.Errorf("%s open %d times, want once", a, fdsOn(t, a))
	}
}
