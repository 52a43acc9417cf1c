package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// reopenConfig is swapConfig with an access log at the path %q.
var reopenConfig = fmt.Sprintf(swapConfig, "log {\n  access {\n    path = %q\n  }\n}")

// waitLines waits until path holds n access log lines.
func waitLines(t *testing.T, path string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		got := bytes.Count(b, []byte("\n"))
		if got == n {
			return
		}
		if got > n || time.Now().After(deadline) {
			t.Fatalf("%s has %d lines, want %d:\n%s", filepath.Base(path), got, n, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func getWeb(t *testing.T, s *Server) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Get("http://" + s.Addr("web").String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// TestReopenAccessLog rotates the access log as logrotate does: rename,
// then reopen (the SIGUSR1 handler's call), then rename and reload
// (`postrotate kill -HUP`); then a reopen into a removed directory fails,
// is logged and counted, and lines keep going to the old file.
func TestReopenAccessLog(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "logs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "access.log")
	src := fmt.Sprintf(reopenConfig, path)
	var logs syncBuf
	s, err := New(parse(t, src), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	count := func(result string) float64 {
		return testutil.ToFloat64(s.Metrics().AccessLogReopens.WithLabelValues(result))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	getWeb(t, s)
	waitLines(t, path, 1)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := s.ReopenAccessLog(ctx, "SIGUSR1"); err != nil {
		t.Fatalf("reopen: %v", err)
	}
	getWeb(t, s)
	waitLines(t, path, 1)
	waitLines(t, path+".1", 1)
	if count(reopenOK) != 1 {
		t.Errorf("reopens ok = %v, want 1", count(reopenOK))
	}

	if err := os.Rename(path, path+".2"); err != nil {
		t.Fatal(err)
	}
	reload(t, s, src)
	getWeb(t, s)
	waitLines(t, path, 1)
	waitLines(t, path+".2", 1)
	if count(reopenOK) != 2 || count(reopenError) != 0 {
		t.Errorf("reopens ok = %v error = %v after a reload, want 2 and 0", count(reopenOK), count(reopenError))
	}

	// A second name for the open file outlives its directory.
	kept := filepath.Join(base, "kept.log")
	if err := os.Link(path, kept); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := s.ReopenAccessLog(ctx, "SIGUSR1"); err == nil {
		t.Fatal("reopen into a removed directory succeeded")
	}
	if count(reopenError) != 1 || count(reopenOK) != 2 {
		t.Errorf("reopens ok = %v error = %v, want 2 and 1", count(reopenOK), count(reopenError))
	}
	if l := logs.String(); !strings.Contains(l, "level=ERROR msg=\"access log: reopen failed") {
		t.Errorf("no error logged:\n%s", l)
	}
	getWeb(t, s)
	waitLines(t, kept, 2)
}

// TestReopenAccessLogOnStdout: an access log on standard output, or none,
// has nothing to reopen, and nothing is counted.
func TestReopenAccessLogOnStdout(t *testing.T) {
	for _, src := range []string{fmt.Sprintf(reopenConfig, "-"), "entrypoint \"web\" { address = \"127.0.0.1:0\" }\n"} {
		s := started(t, src)
		if err := s.ReopenAccessLog(context.Background(), "SIGUSR1"); err != nil {
			t.Errorf("reopen: %v", err)
		}
		for _, r := range []string{reopenOK, reopenError} {
			if n := testutil.ToFloat64(s.Metrics().AccessLogReopens.WithLabelValues(r)); n != 0 {
				t.Errorf("reopens %s = %v, want 0", r, n)
			}
		}
	}
}
