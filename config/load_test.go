package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadErrors(t *testing.T) {
	empty := t.TempDir()
	tests := []struct {
		name    string
		paths   []string
		wantMsg string
		wantIs  error
	}{
		{name: "no paths", paths: nil, wantMsg: "no configuration file given"},
		{name: "missing file", paths: []string{"testdata/does-not-exist.hcl"}, wantMsg: "testdata/does-not-exist.hcl: cannot stat: no such file or directory", wantIs: fs.ErrNotExist},
		{name: "directory without hcl", paths: []string{empty}, wantMsg: empty + ": directory holds no *.hcl file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load(tt.paths...)
			if cfg != nil || err == nil {
				t.Fatalf("Load = %v, %v; want nil and an error", cfg, err)
			}
			var ds Diagnostics
			if !errors.As(err, &ds) {
				t.Fatalf("error %T is not Diagnostics", err)
			}
			if err.Error() != tt.wantMsg {
				t.Errorf("error = %q, want %q", err.Error(), tt.wantMsg)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(err, %v) = false", tt.wantIs)
			}
		})
	}
}

// TestLoadFilesAndDirectory checks that a directory means its *.hcl files
// in sorted order, the same as naming them.
func TestLoadFilesAndDirectory(t *testing.T) {
	byDir, err := Load("testdata/multi")
	if err != nil {
		t.Fatal(err)
	}
	byFiles, err := Load("testdata/multi/a.hcl", "testdata/multi/b.hcl")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join("testdata", "multi", "a.hcl"), filepath.Join("testdata", "multi", "b.hcl")}
	if !reflect.DeepEqual(byDir.Files, want) {
		t.Errorf("Files = %q, want %q", byDir.Files, want)
	}
	if !reflect.DeepEqual(byDir, byFiles) {
		t.Error("loading the directory and loading its files differ")
	}
}

func TestParseFiles(t *testing.T) {
	a := Source{Filename: "a.hcl", Src: []byte("entrypoint \"web\" {\n  address = \":8080\"\n}\n")}
	b := Source{Filename: "b.hcl", Src: []byte("entrypoint \"web\" {\n  address = \":9090\"\n}\nentrypoint \"x\" {\n  adress = \":1\"\n}\n")}
	_, err := ParseFiles(b, a)
	want := "a.hcl:1:12: duplicate entrypoint \"web\"; first defined at b.hcl:1:12\n" +
		"b.hcl:5:3: entrypoint \"x\": unsupported attribute \"adress\"; did you mean \"address\"?"
	if err == nil || err.Error() != want {
		t.Errorf("ParseFiles error:\n%v\nwant:\n%s", err, want)
	}
	if _, err := ParseFiles(); err == nil {
		t.Error("ParseFiles() without files succeeded")
	}
}

// TestDefaults checks that an empty-as-possible config gets every
// documented default.
func TestDefaults(t *testing.T) {
	src := `
entrypoint "t" {
  address = ":1"
  proxy_protocol {
    trusted = ["127.0.0.1"]
  }
}
entrypoint "u" {
  address = ":1"
  network = "udp"
}
tcp_route "t" {
  entrypoints = ["t"]
  service     = "s"
}
udp_route "u" {
  entrypoints = ["u"]
  service     = "s"
}
service "s" {
  backend "127.0.0.1:1" {}
}
`
	cfg, err := Parse("d.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"grace_period", cfg.Global.GracePeriod, 10 * time.Second},
		{"log level", cfg.Log.Level, "info"},
		{"log format", cfg.Log.Format, "text"},
		{"network", cfg.Entrypoints[0].Network, NetworkTCP},
		{"max_connections", cfg.Entrypoints[0].MaxConnections, 10000},
		{"max_flows on tcp", cfg.Entrypoints[0].MaxFlows, 0},
		{"max_flows", cfg.Entrypoints[1].MaxFlows, 10000},
		{"max_connections on udp", cfg.Entrypoints[1].MaxConnections, 0},
		{"proxy_protocol timeout", cfg.Entrypoints[0].ProxyProtocol.Timeout, 5 * time.Second},
		{"no proxy_protocol", cfg.Entrypoints[1].ProxyProtocol == nil, true},
		{"handshake", cfg.Entrypoints[0].Timeouts.Handshake, 10 * time.Second},
		{"read_header", cfg.Entrypoints[0].Timeouts.ReadHeader, 10 * time.Second},
		{"idle", cfg.Entrypoints[0].Timeouts.Idle, 5 * time.Minute},
		{"udp idle_timeout", cfg.UDPRoutes[0].IdleTimeout, 30 * time.Second},
		{"balancer", cfg.Services[0].Balancer, BalancerRoundRobin},
		{"service proxy_protocol", cfg.Services[0].ProxyProtocol, ""},
		{"connect_timeout", cfg.Services[0].ConnectTimeout, 5 * time.Second},
		{"fail_timeout", cfg.Services[0].FailTimeout, 10 * time.Second},
		{"weight", cfg.Services[0].Backends[0].Weight, 1},
		{"no warnings", len(cfg.Warnings), 0},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("got %v, want %v", c.got, c.want)
			}
		})
	}
}

// TestFullSetsEveryField fails when a field is added to the output types
// but testdata/full.hcl (and so the decoder) never sets it.
func TestFullSetsEveryField(t *testing.T) {
	cfg, err := Load("testdata/full.hcl")
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	all := map[string]bool{}
	walk(reflect.ValueOf(cfg).Elem(), set, all)
	allowedZero := map[string]bool{
		"Config.Warnings": true,
	}
	for f := range all {
		if !set[f] && !allowedZero[f] {
			t.Errorf("%s is zero everywhere in full.hcl: does the decoder set it?", f)
		}
	}
}

func walk(v reflect.Value, set, all map[string]bool) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			walk(v.Elem(), set, all)
		}
	case reflect.Slice:
		for i := range v.Len() {
			walk(v.Index(i), set, all)
		}
	case reflect.Struct:
		if v.Type().PkgPath() != reflect.TypeFor[Config]().PkgPath() {
			return // netip.Prefix and the like are leaves
		}
		for i := range v.NumField() {
			name := v.Type().Name() + "." + v.Type().Field(i).Name
			all[name] = true
			if !v.Field(i).IsZero() {
				set[name] = true
			}
			walk(v.Field(i), set, all)
		}
	}
}

// TestDiagnosticsSorted checks order across files and that every message
// of a multi-error file is reported, not only the first.
func TestDiagnosticsSorted(t *testing.T) {
	_, err := ParseFiles(
		Source{Filename: "b.hcl", Src: []byte("servce \"x\" {}\nfoo {}\n")},
		Source{Filename: "a.hcl", Src: []byte("bar {}\n")},
	)
	var ds Diagnostics
	if !errors.As(err, &ds) {
		t.Fatalf("got %v", err)
	}
	var got []string
	for _, d := range ds {
		got = append(got, d.Pos.String())
	}
	if want := "a.hcl:1:1 b.hcl:1:1 b.hcl:2:1"; strings.Join(got, " ") != want {
		t.Errorf("order %q, want %q", got, want)
	}
}

// TestWarnings checks unused entrypoints and services are warnings with
// positions, and do not fail the load.
func TestWarnings(t *testing.T) {
	cfg, err := Load("testdata/warnings.hcl")
	if err != nil {
		t.Fatal(err)
	}
	want := "testdata/warnings.hcl:2:12: warning: entrypoint \"spare\" is not used by any route\n" +
		"testdata/warnings.hcl:10:9: warning: service \"spare\" is not used by any route"
	if got := cfg.Warnings.Error(); got != want {
		t.Errorf("warnings:\n%s\nwant:\n%s", got, want)
	}
	if cfg.Warnings.HasErrors() {
		t.Error("warnings report errors")
	}
}

// TestLoadIsRepeatable guards against hidden state between loads.
func TestLoadIsRepeatable(t *testing.T) {
	a, err := Load("testdata/full.hcl")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load("testdata/full.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Error("two loads of the same file differ")
	}
	if _, err := os.Stat("testdata/full.golden"); err != nil {
		t.Fatal(err)
	}
}
