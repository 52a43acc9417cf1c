//go:build linux

package integration

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var diagRE = regexp.MustCompile(`\.hcl:\d+:\d+: `)

func TestValidate(t *testing.T) {
	t.Run("bad testdata files", func(t *testing.T) {
		all, err := filepath.Glob(filepath.Join(moduleRoot, "config", "testdata", "*.hcl"))
		if err != nil {
			t.Fatal(err)
		}
		// Directories of files form one configuration each.
		dirs, err := filepath.Glob(filepath.Join(moduleRoot, "config", "testdata", "*", "*.hcl"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range dirs {
			if d := filepath.Dir(f); !slices.Contains(all, d+".hcl") && !slices.Contains(all, d) {
				all = append(all, d)
			}
		}
		var bad []string
		for _, f := range all {
			if _, err := os.Stat(strings.TrimSuffix(f, ".hcl") + ".err"); err == nil {
				bad = append(bad, f)
			}
		}
		if len(bad) < 10 {
			t.Fatalf("found %d config/testdata/*.hcl files with a sibling .err, want at least 10", len(bad))
		}
		// Run from config/ with the same relative paths as the config
		// package's golden test, so every line of the .err file (its
		// file:line:col: message diagnostics) must appear on stderr as is.
		dir := filepath.Join(moduleRoot, "config")
		for _, f := range bad {
			t.Run(filepath.Base(f), func(t *testing.T) {
				rel := filepath.Join("testdata", filepath.Base(f))
				code, _, stderr := runCLIIn(t, dir, "validate", rel)
				if code != 2 {
					t.Errorf("exit code %d, want 2; stderr:\n%s", code, stderr)
				}
				if !diagRE.MatchString(stderr) {
					t.Errorf("stderr has no file:line:col: diagnostic:\n%s", stderr)
				}
				want, err := os.ReadFile(strings.TrimSuffix(f, ".hcl") + ".err")
				if err != nil {
					t.Fatal(err)
				}
				for _, line := range strings.Split(strings.TrimSpace(string(want)), "\n") {
					if !strings.Contains(stderr, strings.TrimSpace(line)) {
						t.Errorf("stderr lacks the expected diagnostic %q:\n%s", line, stderr)
					}
				}
			})
		}
	})

	t.Run("example.hcl is valid", func(t *testing.T) {
		f := filepath.Join(moduleRoot, "example.hcl")
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("example config missing: %v", err)
		}
		if code, _, stderr := runCLI(t, "validate", f); code != 0 {
			t.Errorf("exit code %d, want 0; stderr:\n%s", code, stderr)
		}
	})

	t.Run("unknown service names file line and col", func(t *testing.T) {
		f := writeFile(t, "typo.hcl", `entrypoint "in" {
  address = "127.0.0.1:0"
}
tcp_route "r" {
  entrypoints = ["in"]
  service     = "missing"
}
`)
		code, _, stderr := runCLI(t, "validate", f)
		if code != 2 || !strings.Contains(stderr, "typo.hcl:6:") {
			t.Errorf("exit code %d, stderr %q; want 2 and a diagnostic at typo.hcl:6", code, stderr)
		}
	})

	t.Run("no arguments is a usage error", func(t *testing.T) {
		if code, _, stderr := runCLI(t, "validate"); code != 2 {
			t.Errorf("exit code %d, want 2; stderr:\n%s", code, stderr)
		}
	})
}

func TestCLI(t *testing.T) {
	t.Run("version", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, "version")
		if code != 0 || strings.TrimSpace(stdout+stderr) == "" {
			t.Errorf("exit code %d, output %q; want 0 and a version", code, stdout+stderr)
		}
	})
	t.Run("unknown subcommand", func(t *testing.T) {
		if code, _, _ := runCLI(t, "frobnicate"); code != 2 {
			t.Errorf("exit code %d, want 2", code)
		}
	})
	t.Run("missing config file", func(t *testing.T) {
		code, _, stderr := runCLI(t, "run", "-config", filepath.Join(t.TempDir(), "nope.hcl"))
		if code != 2 {
			t.Errorf("exit code %d, want 2; stderr:\n%s", code, stderr)
		}
	})
}

func TestPortInUse(t *testing.T) {
	for _, network := range []string{"tcp", "udp"} {
		t.Run(network, func(t *testing.T) {
			var addr string
			if network == "tcp" {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				addr = ln.Addr().String()
			} else {
				pc, err := net.ListenPacket("udp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer pc.Close()
				addr = pc.LocalAddr().String()
			}
			route := `tcp_route "r" {
  entrypoints = ["busy_ep"]
  service     = "s"
}`
			if network == "udp" {
				route = strings.Replace(route, "tcp_route", "udp_route", 1)
			}
			p := launchProxy(t, hcl(`
entrypoint "busy_ep" {
  address = %q
  network = %q
}
%s
service "s" {
  backend "127.0.0.1:9" {}
}
`, addr, network, route))
			code, exited := p.wait(exitTimeout)
			if !exited {
				t.Fatalf("proxynow still running %v after binding a busy %s port", exitTimeout, network)
			}
			out := p.log.String()
			if code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if !strings.Contains(out, "busy_ep") || !strings.Contains(out, addr) {
				t.Errorf("stderr does not name entrypoint busy_ep and address %s:\n%s", addr, out)
			}
		})
	}
}

// TestConfigFlags checks that -config repeats and that a directory means
// every *.hcl file in it.
func TestConfigFlags(t *testing.T) {
	be := startTCPBackend(t, echo)
	dir := t.TempDir()
	files := map[string]string{
		"a.hcl":      "log {\n  format = \"json\"\n}\nentrypoint \"in\" {\n  address = \"127.0.0.1:0\"\n}\n",
		"b.hcl":      "tcp_route \"r\" {\n  entrypoints = [\"in\"]\n  service     = \"s\"\n}\n",
		"ignored.md": "not a config: only *.hcl files are read\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	svc := writeFile(t, "svc.hcl", hcl("service \"s\" {\n  backend %q {}\n}\n", be.addr))

	p := startProxyArgs(t, "run", "-config", dir, "-config", svc)
	c := dialTCP(t, p.addr("in"))
	if got, err := roundTrip(c, "split config"); err != nil || got != "split config" {
		t.Fatalf("echo: %q, %v", got, err)
	}
	if code, _, stderr := runCLI(t, "validate", dir, svc); code != 0 {
		t.Errorf("validate of the same files: exit %d, want 0:\n%s", code, stderr)
	}
}
