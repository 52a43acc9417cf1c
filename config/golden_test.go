package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the .golden and .err files of testdata")

// goldenEnv is the environment the golden files may read with env().
var goldenEnv = map[string]string{
	"PROXYNOW_TEST_ADDR":    "127.0.0.1:7070",
	"PROXYNOW_TEST_MAXCONN": "42",
}

// goldenCases returns every testdata/*.hcl file and every testdata
// directory holding .hcl files, each with the base of its expected files.
func goldenCases(t testing.TB) map[string]string {
	t.Helper()
	cases := map[string]string{}
	files, err := filepath.Glob("testdata/*.hcl")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		cases[strings.TrimSuffix(filepath.Base(f), ".hcl")] = f
	}
	dirs, err := filepath.Glob("testdata/*/*.hcl")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range dirs {
		d := filepath.Dir(f)
		cases[filepath.Base(d)] = d
	}
	return cases
}

// TestGolden loads each case and compares the result with X.golden (the
// Config as indented JSON) or X.err (the diagnostics, one per line). Exactly
// one of the two must exist; run with -update to regenerate them.
func TestGolden(t *testing.T) {
	for k, v := range goldenEnv {
		t.Setenv(k, v)
	}
	cases := goldenCases(t)
	if len(cases) < 30 {
		t.Fatalf("found only %d golden cases; is testdata missing?", len(cases))
	}
	for name, path := range cases {
		t.Run(name, func(t *testing.T) {
			base := filepath.Join("testdata", name)
			cfg, err := Load(path)
			var got []byte
			want, other := base+".golden", base+".err"
			if err != nil {
				var ds Diagnostics
				if !errors.As(err, &ds) {
					t.Fatalf("Load error is %T, want Diagnostics: %v", err, err)
				}
				if cfg != nil {
					t.Error("Load returned a Config together with an error")
				}
				for _, d := range ds {
					if d.Severity != SeverityError || d.Pos.Line < 1 || d.Pos.Col < 1 || !strings.HasPrefix(d.Pos.File, "testdata/") {
						t.Errorf("diagnostic without a proper position or severity: %#v", d)
					}
					checkStyle(t, d.Message)
				}
				got = []byte(err.Error() + "\n")
				want, other = other, want
			} else {
				got, err = json.MarshalIndent(cfg, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, '\n')
				for _, w := range cfg.Warnings {
					checkStyle(t, w.Message)
				}
			}
			if *update {
				if err := os.WriteFile(want, got, 0o644); err != nil {
					t.Fatal(err)
				}
				os.Remove(other)
				return
			}
			if _, err := os.Stat(other); err == nil {
				t.Errorf("%s exists, but the load produced %s:\n%s", other, filepath.Ext(want), got)
			}
			exp, err := os.ReadFile(want)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it); got:\n%s", err, got)
			}
			if !bytes.Equal(got, exp) {
				t.Errorf("%s mismatch\n--- got\n%s--- want\n%s", want, got, exp)
			}
		})
	}
}

// checkStyle enforces the message style: lower-case start, no trailing
// period, one line.
func checkStyle(t *testing.T, msg string) {
	t.Helper()
	if msg == "" || msg[0] >= 'A' && msg[0] <= 'Z' || strings.HasSuffix(msg, ".") || strings.Contains(msg, "\n") {
		t.Errorf("message breaks the style rules: %q", msg)
	}
}
