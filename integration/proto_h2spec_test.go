//go:build linux

package integration

// h2spec (github.com/summerwind/h2spec, installed by .ci/run at a pinned
// version) against a TLS entrypoint: at least 140 of its 145 cases pass and
// every failure is one of those known for Go's HTTP/2 server.

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	h2specTotal     = 145
	h2specMinPassed = 140
)

// h2specKnownGoFailures are the cases Go's own HTTP/2 server fails (a
// plain net/http server that reads the request body fails exactly these).
var h2specKnownGoFailures = map[string]bool{
	"http2/4.2/3":     true, // HEADERS over SETTINGS_MAX_FRAME_SIZE: Go answers instead of FRAME_SIZE_ERROR
	"http2/6.5.3/1":   true, // multiple SETTINGS_INITIAL_WINDOW_SIZE values
	"http2/8.1.2.2/1": true, // connection-specific header field accepted
	"http2/8.1.2.2/2": true, // TE other than "trailers" accepted
}

// h2specReport is h2spec's JUnit XML: a case failed when it has an error or
// failure element. Its ID is the suite's package and its 1-based index, as
// h2spec prints it ("http2/4.2/3").
type h2specReport struct {
	Suites []struct {
		Name    string `xml:"name,attr"`
		Package string `xml:"package,attr"`
		Cases   []struct {
			Package   string    `xml:"package,attr"`
			ClassName string    `xml:"classname,attr"`
			Error     *xmlField `xml:"error"`
			Failure   *xmlField `xml:"failure"`
			Skipped   *xmlField `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

type xmlField struct {
	Text string `xml:",chardata"`
}

type h2specResult struct {
	total, passed, skipped int
	failed                 []h2specFailure
}

type h2specFailure struct {
	id, title, detail string
}

func parseH2specReport(b []byte) (h2specResult, error) {
	var r h2specReport
	if err := xml.Unmarshal(b, &r); err != nil {
		return h2specResult{}, err
	}
	var res h2specResult
	for _, s := range r.Suites {
		for i, c := range s.Cases {
			res.total++
			pkg := c.Package
			if pkg == "" {
				pkg = s.Package
			}
			id := fmt.Sprintf("%s/%d", pkg, i+1)
			switch {
			case c.Error != nil:
				res.failed = append(res.failed, h2specFailure{id, c.ClassName, strings.TrimSpace(c.Error.Text)})
			case c.Failure != nil:
				res.failed = append(res.failed, h2specFailure{id, c.ClassName, strings.TrimSpace(c.Failure.Text)})
			case c.Skipped != nil:
				res.skipped++
			default:
				res.passed++
			}
		}
	}
	return res, nil
}

// runH2spec runs h2spec over TLS against addr and returns its parsed report.
func runH2spec(t *testing.T, bin, addr string) h2specResult {
	t.Helper()
	host, port, ok := strings.Cut(addr, ":")
	if !ok {
		t.Fatalf("bad address %q", addr)
	}
	report := filepath.Join(t.TempDir(), "report.xml")
	// 145 cases, a few of which wait out h2spec's 2s timeout: normally
	// ~15s; a loaded 2-core machine gets ample slack.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-h", host, "-p", port, "-t", "-k", "-j", report)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("h2spec did not finish within 5m:\n%s", tail(string(out), 4000))
	}
	// h2spec exits 1 when any case fails; the report is what counts.
	b, rerr := os.ReadFile(report)
	if rerr != nil {
		t.Fatalf("h2spec wrote no report (%v; exit: %v):\n%s", rerr, err, tail(string(out), 4000))
	}
	res, perr := parseH2specReport(b)
	if perr != nil {
		t.Fatalf("parsing the h2spec report: %v\n%s", perr, tail(string(b), 2000))
	}
	if t.Failed() || len(res.failed) > 0 {
		t.Logf("h2spec summary: %s", strings.TrimSpace(lastLine(string(out))))
	}
	return res
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func checkH2spec(t *testing.T, res h2specResult) {
	t.Helper()
	sort.Slice(res.failed, func(i, j int) bool { return res.failed[i].id < res.failed[j].id })
	var unknown []string
	for _, f := range res.failed {
		known := h2specKnownGoFailures[f.id]
		tag := "known Go HTTP/2 server failure"
		if !known {
			tag = "NOT a known Go failure"
			unknown = append(unknown, f.id)
		}
		t.Logf("h2spec failed %s (%s) [%s]\n    expected/actual:\n    %s", f.id, f.title, tag, strings.ReplaceAll(f.detail, "\n", "\n    "))
	}
	t.Logf("h2spec: %d cases, %d passed, %d skipped, %d failed", res.total, res.passed, res.skipped, len(res.failed))
	if res.total != h2specTotal {
		t.Errorf("h2spec ran %d cases, want %d (another h2spec version than .ci/run pins?)", res.total, h2specTotal)
	}
	if res.passed < h2specMinPassed {
		t.Errorf("h2spec: %d of %d passed, want at least %d", res.passed, res.total, h2specMinPassed)
	}
	if len(unknown) > 0 {
		t.Errorf("h2spec failures beyond the known Go ones: %s", strings.Join(unknown, ", "))
	}
}

func TestProtoH2spec(t *testing.T) {
	bin := requireTool(t, "h2spec")

	t.Run("respond", func(t *testing.T) {
		pp := startProtoProxy(t, true, `respond {
    status = 200
    body   = "hello from proxynow\n"
  }`)
		checkH2spec(t, runH2spec(t, bin, pp.addr))
	})

	t.Run("go-backend", func(t *testing.T) {
		addr := startProtoHTTPBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "hello from the backend\n")
		}))
		pp := startProtoProxy(t, true, fmt.Sprintf(`backend "http://%s" {}`, addr))
		checkH2spec(t, runH2spec(t, bin, pp.addr))
	})
}
