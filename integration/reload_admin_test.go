//go:build linux

package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func adminReloadConfig(body string) string {
	return hcl(`
admin { address = "127.0.0.1:0" }
entrypoint "web" { address = "127.0.0.1:0" }
http_route "r" {
  entrypoints = ["web"]
  service     = "s"
}
service "s" {
  respond { body = %q }
}
`, body)
}

// postReload sends POST /reload and decodes the JSON answer.
func postReload(t *testing.T, admin string) (int, map[string]any) {
	t.Helper()
	// No keep-alive: an idle admin connection would count as a descriptor
	// and a goroutine in the reload-under-load test's leak check.
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: ioTimeout}).Post("http://"+admin+"/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("POST /reload: %d, not JSON: %s", resp.StatusCode, b)
	}
	return resp.StatusCode, got
}

// gauge is the value of the series of family name with labels.
func gauge(t *testing.T, admin, name string, labels map[string]string) float64 {
	t.Helper()
	m := series(t, scrape(t, admin), name, labels)
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// TestReloadAdminEndpoint: POST /reload answers 400 with the diagnostics of
// an invalid file (and changes nothing), 200 for a valid one; the reload
// counters and the last success timestamp follow.
func TestReloadAdminEndpoint(t *testing.T) {
	p := startReloadable(t, adminReloadConfig("v1"))
	admin := p.adminAddr()
	web := "http://" + p.addr("web")
	c := newH1Client(t)
	const lastSuccess = "proxynow_config_last_reload_success_timestamp_seconds"
	ts0 := gauge(t, admin, lastSuccess, nil)
	if ts0 == 0 {
		t.Fatal("no last success timestamp")
	}

	writeConfig(t, p.file, strings.Replace(adminReloadConfig("v2"), `service     = "s"`, `service     = "nope"`, 1))
	code, got := postReload(t, admin)
	diags, _ := got["diagnostics"].([]any)
	if code != http.StatusBadRequest || len(diags) == 0 {
		t.Fatalf("POST /reload of an invalid file: %d %v", code, got)
	}
	d0, _ := diags[0].(map[string]any)
	if pos, _ := d0["position"].(string); !strings.HasPrefix(pos, p.file+":") {
		t.Fatalf("diagnostic position %q, want %s:line:col", pos, p.file)
	}
	if msg, _ := d0["message"].(string); !strings.Contains(msg, `"nope"`) {
		t.Fatalf("diagnostic message %q", msg)
	}
	if r := mustDo(t, c, web, reqSpec{}); r.body != "v1" {
		t.Fatalf("after the rejected reload: %q", r.body)
	}

	writeConfig(t, p.file, adminReloadConfig("v2"))
	if code, got := postReload(t, admin); code != http.StatusOK || got["status"] != "reloaded" {
		t.Fatalf("POST /reload of a valid file: %d %v", code, got)
	}
	if r := mustDo(t, c, web, reqSpec{}); r.body != "v2" {
		t.Fatalf("after the reload: %q", r.body)
	}
	for result, want := range map[string]float64{"failure": 1, "success": 1} {
		if got := gauge(t, admin, "proxynow_config_reloads_total", map[string]string{"result": result}); got != want {
			t.Errorf("proxynow_config_reloads_total{result=%q} = %v, want %v", result, got, want)
		}
	}
	if ts := gauge(t, admin, lastSuccess, nil); ts < ts0 {
		t.Fatalf("last success timestamp %v went back from %v", ts, ts0)
	}
}
