//go:build linux

package integration

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// adminHash is bcrypt("secret") at cost 4, for tests only.
const adminHash = "$2a$04$ukZWu3Uv0/mEMlTifWmsZu6wbBCB179P/ukDIhekrJr8Tt1NsDNpi"

func TestAdminRefusesRemoteBind(t *testing.T) {
	tests := []struct {
		name, hcl, want string
	}{
		{"wildcard", "admin {\n  address = \":9901\"\n}\n", `proxynow.hcl:2:13: admin: address ":9901" is reachable from other hosts`},
		{"public IP", "admin {\n  address = \"192.0.2.1:9901\"\n}\n", `proxynow.hcl:2:13: admin: address "192.0.2.1:9901" is reachable from other hosts`},
		{"allow_remote without basic_auth", "admin {\n  address = \"0.0.0.0:9901\"\n  allow_remote = true\n}\n", `proxynow.hcl:3:18: admin: allow_remote = true requires a basic_auth`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := writeFile(t, "proxynow.hcl", tc.hcl)
			code, _, stderr := runCLI(t, "validate", f)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("validate: exit %d, stderr %q; want 2 and %q", code, stderr, tc.want)
			}
		})
	}
	t.Run("allow_remote with basic_auth validates", func(t *testing.T) {
		f := writeFile(t, "proxynow.hcl", "admin {\n  address = \"0.0.0.0:9901\"\n  allow_remote = true\n  basic_auth {\n    users = [\"ops:"+adminHash+"\"]\n  }\n}\n")
		if code, _, stderr := runCLI(t, "validate", f); code != 0 {
			t.Fatalf("validate: exit %d: %s", code, stderr)
		}
	})
}

func TestAdminEndpoints(t *testing.T) {
	t.Setenv("PROXYNOW_TEST_TOKEN", "env-secret-token")
	api := startHTTPBackend(t, "api")
	p := startProxy(t, hcl(`
admin {
  address = "127.0.0.1:0"
  basic_auth {
    users = ["ops:%s"]
  }
}
entrypoint "web" {
  address = "127.0.0.1:0"
}
middleware "auth" {
  basic_auth {
    users = ["alice:%s"]
  }
}
middleware "fwd" {
  forward_auth {
    address = "http://svc:fwd-password@127.0.0.1:1/check"
  }
}
middleware "inject" {
  headers {
    request {
      set = { "X-Api-Token" = env("PROXYNOW_TEST_TOKEN") }
    }
  }
}
http_route "api" {
  entrypoints = ["web"]
  headers     = { "X-Auth-Key" = "route-secret" }
  middlewares = ["auth", "inject"]
  service     = "api"
}
http_route "other" {
  entrypoints = ["web"]
  path_prefix = "/fwd/"
  middlewares = ["fwd"]
  service     = "api"
}
service "api" {
  backend "http://%s" {}
  circuit_breaker {}
  health_check {
    path     = "/"
    interval = "100ms"
    timeout  = "50ms"
  }
}
`, adminHash, adminHash, api.addr))
	admin := p.adminAddr()
	auth := map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("ops:secret"))}

	t.Run("basic_auth guards every path", func(t *testing.T) {
		for _, path := range []string{"/metrics", "/healthz", "/readyz", "/config", "/upstreams"} {
			if code, h, _ := adminGet(t, admin, path, nil); code != 401 || h.Get("Www-Authenticate") == "" {
				t.Errorf("%s without credentials: %d, want 401 with a challenge", path, code)
			}
			bad := map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("ops:wrong"))}
			if code, _, _ := adminGet(t, admin, path, bad); code != 401 {
				t.Errorf("%s with a wrong password: %d, want 401", path, code)
			}
		}
	})

	t.Run("healthz", func(t *testing.T) {
		code, h, b := adminGet(t, admin, "/healthz", auth)
		var got map[string]string
		if code != 200 || h.Get("Content-Type") != "application/json" || json.Unmarshal(b, &got) != nil || got["status"] != "ok" {
			t.Fatalf("/healthz: %d %q %s", code, h.Get("Content-Type"), b)
		}
	})

	t.Run("readyz", func(t *testing.T) {
		code, _, b := adminGet(t, admin, "/readyz", auth)
		var got struct {
			Ready       bool `json:"ready"`
			Entrypoints []struct {
				Name, Network, Address string
			} `json:"entrypoints"`
		}
		if err := json.Unmarshal(b, &got); err != nil || code != 200 || !got.Ready {
			t.Fatalf("/readyz: %d %s (%v)", code, b, err)
		}
		if len(got.Entrypoints) != 1 || got.Entrypoints[0].Name != "web" || got.Entrypoints[0].Address != p.addr("web") {
			t.Errorf("/readyz entrypoints: %s", b)
		}
	})

	t.Run("upstreams", func(t *testing.T) {
		code, _, b := adminGet(t, admin, "/upstreams", auth)
		var got struct {
			Services []struct {
				Service  string `json:"service"`
				Balancer string `json:"balancer"`
				Breaker  *struct {
					State       string            `json:"state"`
					Transitions map[string]uint64 `json:"transitions"`
				} `json:"breaker"`
				Backends []struct {
					Address      string `json:"address"`
					Up, Healthy  bool
					InFlight     *int64 `json:"in_flight"`
					HealthChecks *struct {
						OK, Failed uint64
					} `json:"health_checks"`
				} `json:"backends"`
			} `json:"services"`
		}
		if err := json.Unmarshal(b, &got); err != nil || code != 200 {
			t.Fatalf("/upstreams: %d %s (%v)", code, b, err)
		}
		if len(got.Services) != 1 {
			t.Fatalf("/upstreams: %s", b)
		}
		s := got.Services[0]
		if s.Service != "api" || s.Balancer != "round_robin" || s.Breaker == nil || s.Breaker.State != "closed" || len(s.Breaker.Transitions) != 3 {
			t.Errorf("/upstreams service: %s", b)
		}
		if len(s.Backends) != 1 || s.Backends[0].Address != api.addr || !s.Backends[0].Up || !s.Backends[0].Healthy ||
			s.Backends[0].InFlight == nil || s.Backends[0].HealthChecks == nil {
			t.Errorf("/upstreams backend: %s", b)
		}
	})

	t.Run("config redacts secrets", func(t *testing.T) {
		code, _, b := adminGet(t, admin, "/config", auth)
		if code != 200 {
			t.Fatalf("/config: %d %s", code, b)
		}
		body := string(b)
		for _, secret := range []string{adminHash, "$2a$", "fwd-password", "env-secret-token", "route-secret"} {
			if strings.Contains(body, secret) {
				t.Errorf("/config shows %q:\n%s", secret, body)
			}
		}
		for _, kept := range []string{`"ops:<redacted>"`, `"alice:<redacted>"`, `"X-Api-Token": "<redacted>"`, `http://svc:xxxxx@127.0.0.1:1/check`, `"api"`} {
			if !strings.Contains(body, kept) {
				t.Errorf("/config lacks %s:\n%s", kept, body)
			}
		}
		var cfg map[string]any
		if err := json.Unmarshal(b, &cfg); err != nil || cfg["services"] == nil {
			t.Errorf("/config is not the config as JSON: %v", err)
		}
	})

	t.Run("reload", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+admin+"/reload", nil)
		req.Header.Set("Authorization", auth["Authorization"])
		resp, err := (&http.Client{Timeout: ioTimeout}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got map[string]string
		// The unchanged file reloads (reload_admin_test.go covers the rest).
		if json.NewDecoder(resp.Body).Decode(&got) != nil || resp.StatusCode != 200 || got["status"] != "reloaded" {
			t.Errorf("POST /reload: %d %v", resp.StatusCode, got)
		}
	})

	t.Run("no pprof unless enabled", func(t *testing.T) {
		if code, _, _ := adminGet(t, admin, "/debug/pprof/", auth); code != 404 {
			t.Errorf("/debug/pprof/ without pprof = true: %d, want 404", code)
		}
	})
}

func TestAdminPprof(t *testing.T) {
	p := startProxy(t, `
admin {
  address = "127.0.0.1:0"
  pprof   = true
}
`)
	admin := p.adminAddr()
	code, _, b := adminGet(t, admin, "/debug/pprof/", nil)
	if code != 200 || !strings.Contains(string(b), "goroutine") {
		t.Fatalf("/debug/pprof/: %d %.200s", code, b)
	}
	if code, _, b := adminGet(t, admin, "/debug/pprof/goroutine?debug=1", nil); code != 200 || !strings.Contains(string(b), "goroutine profile") {
		t.Fatalf("/debug/pprof/goroutine: %d %.200s", code, b)
	}
	if code, _, _ := adminGet(t, admin, "/healthz", nil); code != 200 {
		t.Fatalf("/healthz without basic_auth configured: %d", code)
	}
}
