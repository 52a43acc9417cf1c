//go:build linux

package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestACMEConfigErrors: validate refuses an unknown dns_provider with a
// suggestion and a wildcard without dns-01, naming file, line and column;
// run refuses a storage path that cannot be created, naming the block.
func TestACMEConfigErrors(t *testing.T) {
	bad := writeFile(t, "bad.hcl", `entrypoint "websecure" {
  address = "127.0.0.1:0"
}
tls {
  acme "le" {
    challenge    = "dns-01"
    dns_provider = "cloudflair"
    domains      = ["example.com"]
  }
  acme "alpn" {
    domains = ["*.example.org"]
  }
}
`)
	code, _, stderr := runCLI(t, "validate", bad)
	if code == 0 {
		t.Fatal("validate accepted the file")
	}
	for _, want := range []string{
		`bad.hcl:7:20: tls: acme "le": unknown dns_provider "cloudflair"; did you mean "cloudflare"?`,
		`bad.hcl:11:16: tls: acme "alpn": wildcard "*.example.org" needs challenge = "dns-01"`,
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("validate output lacks %q:\n%s", want, stderr)
		}
	}

	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeFile(t, "run.hcl", `log {
  format = "json"
}
entrypoint "websecure" {
  address = "127.0.0.1:0"
}
tls {
  acme "le" {
    storage = "`+filepath.Join(file, "acme")+`"
    domains = ["example.com"]
  }
}
http_route "r" {
  entrypoints = ["websecure"]
  service     = "s"
}
service "s" {
  respond {
    status = 200
  }
}
`)
	code, _, stderr = runCLI(t, "run", "-config", cfg)
	if code == 0 || !strings.Contains(stderr, `tls: acme \"le\": storage`) && !strings.Contains(stderr, `tls: acme "le": storage`) {
		t.Errorf("run with an unusable storage: exit %d, stderr:\n%s", code, stderr)
	}
}
