package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fnConfig is a valid config whose entrypoint address is expr.
func fnConfig(expr string) string {
	return `entrypoint "web" {
  address = ` + expr + `
}
tcp_route "r" {
  entrypoints = ["web"]
  service     = "app"
}
service "app" {
  backend "127.0.0.1:9000" {}
}
`
}

func TestFunctions(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("sub/addr", "127.0.0.1:1001")
	write("abs", "127.0.0.1:1002")
	write("bin", "\xff\xfe")
	write("nl", "127.0.0.1:1006\n") // as echo writes it
	write("big", strings.Repeat("x", maxFileFuncSize+1))
	env := map[string]string{"ADDR": "127.0.0.1:1003", "PORT": "1004", "EMPTY": "", "BAD": "\xff"}
	src := sources{
		lookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		readFile:  readFileLimited,
	}
	cfgFile := filepath.Join(dir, "proxy.hcl")

	tests := []struct {
		name     string
		expr     string
		wantAddr string
		wantErr  string // substring of the only diagnostic, at line 2 col 13
	}{
		{name: "env", expr: `env("ADDR")`, wantAddr: "127.0.0.1:1003"},
		{name: "env in template", expr: `"127.0.0.1:${env("PORT")}"`, wantAddr: "127.0.0.1:1004"},
		{name: "env set but empty", expr: `"127.0.0.1:1005${env("EMPTY")}"`, wantAddr: "127.0.0.1:1005"},
		{name: "env unset", expr: `env("NOPE")`, wantErr: `entrypoint "web": address: env(): environment variable "NOPE" is not set`},
		{name: "env empty name", expr: `env("")`, wantErr: `env(): variable name is empty`},
		{name: "env invalid utf8", expr: `env("BAD")`, wantErr: `environment variable "BAD" is not valid UTF-8`},
		{name: "env wrong arity", expr: `env()`, wantErr: `not enough function arguments`},
		{name: "env null", expr: `env(null)`, wantErr: `env(): argument must not be null`},
		{name: "file relative to config dir", expr: `file("sub/addr")`, wantAddr: "127.0.0.1:1001"},
		{name: "file absolute", expr: `file("` + filepath.ToSlash(filepath.Join(dir, "abs")) + `")`, wantAddr: "127.0.0.1:1002"},
		{name: "file missing", expr: `file("nope")`, wantErr: `file(): open ` + filepath.Join(dir, "nope") + `: no such file or directory`},
		{name: "file empty path", expr: `file("")`, wantErr: `file(): path is empty`},
		{name: "file not utf8", expr: `file("bin")`, wantErr: `is not valid UTF-8`},
		{name: "file too big", expr: `file("big")`, wantErr: `is larger than`},
		{name: "file is a directory", expr: `file("sub")`, wantErr: `is not a regular file`},
		{name: "file is a device", expr: `file("/dev/zero")`, wantErr: `/dev/zero is not a regular file`},
		{name: "file keeps the newline", expr: `file("nl")`, wantErr: `address "127.0.0.1:1006\n"`},
		{name: "chomp a file", expr: `chomp(file("nl"))`, wantAddr: "127.0.0.1:1006"},
		{name: "trimspace", expr: `trimspace(" 127.0.0.1:1007\n")`, wantAddr: "127.0.0.1:1007"},
		{name: "unknown function", expr: `envv("ADDR")`, wantErr: `call to unknown function`},
		{name: "variables refused", expr: `addr`, wantErr: `variables not allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parse([]Source{{Filename: cfgFile, Src: []byte(fnConfig(tt.expr))}}, src)
			if tt.wantErr != "" {
				var ds Diagnostics
				if !errors.As(err, &ds) || len(ds) != 1 {
					t.Fatalf("want one diagnostic containing %q, got %v", tt.wantErr, err)
				}
				if !strings.Contains(ds[0].Message, tt.wantErr) {
					t.Errorf("message %q does not contain %q", ds[0].Message, tt.wantErr)
				}
				if ds[0].Pos.File != cfgFile || ds[0].Pos.Line != 2 || ds[0].Pos.Col < 13 {
					t.Errorf("position %s, want %s:2:13 or later on that line", ds[0].Pos, cfgFile)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Entrypoints[0].Address; got != tt.wantAddr {
				t.Errorf("address = %q, want %q", got, tt.wantAddr)
			}
		})
	}
}

// TestEnvFromProcess checks that Parse reads the real environment.
func TestEnvFromProcess(t *testing.T) {
	t.Setenv("PROXYNOW_FUNC_TEST_ADDR", "127.0.0.1:1234")
	cfg, err := Parse("x.hcl", []byte(fnConfig(`env("PROXYNOW_FUNC_TEST_ADDR")`)))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Entrypoints[0].Address; got != "127.0.0.1:1234" {
		t.Errorf("address = %q", got)
	}
}
