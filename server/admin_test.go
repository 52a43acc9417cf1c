package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxynow/proxynow/config"
)

const testHash = "$2a$04$ukZWu3Uv0/mEMlTifWmsZu6wbBCB179P/ukDIhekrJr8Tt1NsDNpi"

func TestRedactConfig(t *testing.T) {
	cfg := &config.Config{
		Admin: &config.Admin{BasicAuth: &config.AdminAuth{Users: []string{"ops:" + testHash}}},
		Middlewares: []config.Middleware{
			{Name: "a", BasicAuth: &config.BasicAuth{Users: []string{"alice:" + testHash, "bob:$5$x$y"}}},
			{Name: "f", ForwardAuth: &config.ForwardAuth{Address: "https://u:pw-secret@auth.test/check"}},
			{Name: "h", Headers: &config.Headers{
				Request:  config.HeaderOps{Set: map[string]string{"X-Internal": "req-secret"}, Add: map[string]string{"X-More": "add-secret"}},
				Response: config.HeaderOps{Set: map[string]string{"X-Frame-Options": "DENY"}},
			}},
		},
		HTTPRoutes: []config.HTTPRoute{{Name: "r",
			Headers: map[string]string{"X-Api-Key": "hdr-secret", "X-Canary": "1"},
			Query:   map[string]string{"token": "q-secret", "lang": "en"}}},
	}
	orig, _ := json.Marshal(cfg)
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(redactConfig(cfg)); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, secret := range []string{testHash, "$5$x$y", "pw-secret", "req-secret", "add-secret", "hdr-secret", "q-secret"} {
		if strings.Contains(out, secret) {
			t.Errorf("redacted config shows %q: %s", secret, out)
		}
	}
	for _, kept := range []string{"ops:<redacted>", "alice:<redacted>", "bob:<redacted>", "DENY", `"X-Canary":"1"`, `"lang":"en"`, "auth.test/check"} {
		if !strings.Contains(out, kept) {
			t.Errorf("redacted config lost %q: %s", kept, out)
		}
	}
	if again, _ := json.Marshal(cfg); string(again) != string(orig) {
		t.Error("redactConfig modified the immutable Config")
	}
}

// TestMetricsOutliveServer builds two servers on one Metrics, as a reload
// does: registration happens once, children are shared, counts continue.
func TestMetricsOutliveServer(t *testing.T) {
	be := echoBackend(t)
	src := `
entrypoint "tcp" {
  address = "127.0.0.1:0"
}
tcp_route "echo" {
  entrypoints = ["tcp"]
  service     = "echo"
}
service "echo" {
  backend "` + be + `" {}
}
`
	s1, err := New(parse(t, src), nil)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := NewWithOptions(parse(t, src), Options{Metrics: s1.Metrics()})
	if err != nil {
		t.Fatalf("a second server on the same metrics: %v", err)
	}
	if s2.Registry() != s1.Registry() {
		t.Fatal("the second server has its own registry")
	}
	for _, s := range []*Server{s1, s2} {
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("tcp", s.Addr("tcp").String())
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("x"))
		io.ReadFull(c, make([]byte, 1))
		c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	fams, err := s1.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := -1.0
	for _, f := range fams {
		if f.GetName() == "proxynow_l4_connections_accepted_total" && len(f.Metric) == 1 {
			got = f.Metric[0].GetCounter().GetValue()
		}
	}
	if got != 2 {
		t.Errorf("accepted across both servers = %v, want 2", got)
	}
}

func TestAdminReadyAndReload(t *testing.T) {
	cfg := parse(t, `
admin {
  address = "127.0.0.1:0"
}
entrypoint "web" {
  address = "127.0.0.1:0"
}
tcp_route "echo" {
  entrypoints = ["web"]
  service     = "echo"
}
service "echo" {
  backend "127.0.0.1:9" {}
}
`)
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	base := "http://" + s.AdminAddr().String()
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	post := func(path string) (int, string) {
		resp, err := http.Post(base+path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != 200 || !strings.Contains(body, `"ready": true`) {
		t.Errorf("/readyz after Start: %d %s", code, body)
	}
	if code, body := post("/reload"); code != 503 || !strings.Contains(body, "reload not available") {
		t.Errorf("POST /reload unwired: %d %s", code, body)
	}
	s.SetReload(func(context.Context) (config.Diagnostics, error) {
		d := config.Diagnostics{{Pos: config.Pos{File: "x.hcl", Line: 3, Col: 5}, Message: "bad thing"}}
		return d, errors.New("invalid configuration")
	})
	if code, body := post("/reload"); code != 400 || !strings.Contains(body, `"position": "x.hcl:3:5"`) || !strings.Contains(body, "bad thing") {
		t.Errorf("POST /reload with an invalid config: %d %s", code, body)
	}
	s.SetReload(func(context.Context) (config.Diagnostics, error) { return nil, nil })
	if code, body := post("/reload"); code != 200 || !strings.Contains(body, "reloaded") {
		t.Errorf("POST /reload: %d %s", code, body)
	}
	if code, _ := get("/reload"); code != 405 {
		t.Errorf("GET /reload: %d, want 405", code)
	}
	s.draining.Store(true) // what Shutdown does first
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "shutting down") {
		t.Errorf("/readyz while draining: %d %s", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("admin endpoint still answers after Shutdown")
	}
}

// TestNewFailureClosesAccessLog: when New fails after opening the access
// log (a certificate gone since validation), the writer's goroutine ends
// (goleak checks) and the file is closed.
func TestNewFailureClosesAccessLog(t *testing.T) {
	certFile, keyFile, _ := writeCert(t)
	logPath := filepath.Join(t.TempDir(), "access.log")
	cfg := parse(t, fmt.Sprintf(`
log {
  access {
    path = %q
  }
}
tls {
  certificate "t" {
    cert_file = %q
    key_file  = %q
  }
}
`, logPath, certFile, keyFile))
	os.Remove(certFile)
	if _, err := New(cfg, nil); err == nil {
		t.Fatal("New succeeded without its certificate file")
	}
	if _, err := os.Stat(logPath); err != nil {
		t.Fatalf("the access log was not opened: %v", err)
	}
}
