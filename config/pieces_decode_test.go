package config

import (
	"fmt"
	"strings"
	"testing"
)

// bigServices is a file large enough to be parsed in pieces: n services
// and, first, service "dup" twice (a decode error in the first piece).
func bigServices(n int) string {
	var b strings.Builder
	b.WriteString("service \"dup\" {\n  respond {}\n}\nservice \"dup\" {\n  respond {}\n}\n")
	for i := range n {
		fmt.Fprintf(&b, "service \"s%d\" {\n  backend \"http://127.0.0.1:%d\" {}\n}\n", i, 20000+i)
	}
	return b.String()
}

func diagCount(err error, substr string) int {
	if err == nil {
		return 0
	}
	return strings.Count(err.Error(), substr)
}

// Load decodes a large file piece by piece as it parses it. When a piece
// turns out not to parse as it would within the whole file (here a
// heredoc near the end whose lines look like top-level ones), after
// earlier pieces were decoded, it decodes the file again from scratch:
// each diagnostic is reported once, as for a file parsed in one go.
func TestParsePiecesFallBackAfterDecoding(t *testing.T) {
	src := bigServices(400) + "service \"late\" {\n  respond {\n    body = <<EOT\nlooks_like = \"top level\"\nservice \"nope\" {\nEOT\n  }\n}\n"
	if len(src) < 4*syntaxChunk {
		t.Fatalf("test file only %d bytes: not split", len(src))
	}
	if _, ok := parsePieces([]byte(src), "big.hcl", syntaxChunk); ok {
		t.Fatal("the heredoc did not defeat the piecewise parse: the test tests nothing")
	}
	_, err := Parse("big.hcl", []byte(src))
	if n := diagCount(err, "duplicate service"); n != 1 {
		t.Fatalf("%d duplicate-service diagnostics, want 1: %v", n, err)
	}
	if !strings.Contains(err.Error(), "big.hcl:4:") {
		t.Errorf("the duplicate is not reported at line 4: %v", err)
	}
}

// A syntax error in the last piece: only syntax errors are reported, none
// of the decode errors of the pieces decoded before it was found.
func TestParsePiecesSyntaxErrorLate(t *testing.T) {
	src := bigServices(400) + "service \"z\" {\n  x = [1,\n}\n"
	_, err := Parse("big.hcl", []byte(src))
	if err == nil {
		t.Fatal("no error")
	}
	if n := diagCount(err, "duplicate service"); n != 0 {
		t.Errorf("decode errors beside a syntax error: %v", err)
	}
	if !strings.Contains(err.Error(), "big.hcl:1209:1:") { // the "}" closing the list too early
		t.Errorf("the syntax error is not reported at the end of the file: %v", err)
	}
}

// A valid large file decodes to the same configuration piece by piece as
// the same declarations in a file too small to be split.
func TestParsePiecesSameConfig(t *testing.T) {
	const n = 400
	var big, small strings.Builder
	big.WriteString(`entrypoint "web" { address = "127.0.0.1:8080" }` + "\n")
	for i := range n {
		fmt.Fprintf(&big, "service \"s%d\" {\n  backend \"http://127.0.0.1:%d\" {}\n}\nhttp_route \"r%d\" {\n  entrypoints = [\"web\"]\n  hosts = [\"h%d.test\"]\n  service = \"s%d\"\n}\n", i, 20000+i, i, i, i)
	}
	if len(big.String()) < 4*syntaxChunk {
		t.Fatal("not split")
	}
	got, err := Parse("big.hcl", []byte(big.String()))
	if err != nil {
		t.Fatal(err)
	}
	// The same declarations, each file small enough to be parsed whole.
	var files []Source
	files = append(files, Source{Filename: "big.hcl", Src: []byte(`entrypoint "web" { address = "127.0.0.1:8080" }` + "\n")})
	for i := range n {
		small.Reset()
		fmt.Fprintf(&small, "service \"s%d\" {\n  backend \"http://127.0.0.1:%d\" {}\n}\nhttp_route \"r%d\" {\n  entrypoints = [\"web\"]\n  hosts = [\"h%d.test\"]\n  service = \"s%d\"\n}\n", i, 20000+i, i, i, i)
		files = append(files, Source{Filename: fmt.Sprintf("f%d.hcl", i), Src: []byte(small.String())})
	}
	want, err := ParseFiles(files...)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.HTTPRoutes) != n || len(want.HTTPRoutes) != n || len(got.Services) != len(want.Services) {
		t.Fatalf("%d routes, %d services; want %d, %d", len(got.HTTPRoutes), len(got.Services), len(want.HTTPRoutes), len(want.Services))
	}
	for i := range got.HTTPRoutes {
		g, w := got.HTTPRoutes[i], want.HTTPRoutes[i]
		if g.Name != w.Name || g.Service != w.Service || strings.Join(g.Hosts, ",") != strings.Join(w.Hosts, ",") {
			t.Fatalf("route %d: %+v, want %+v", i, g, w)
		}
	}
}
