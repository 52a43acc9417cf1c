package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// checkPieces fails t unless parsing src piecewise with the given chunk
// size either declines (and parseSyntax then parses it whole) or gives
// exactly the body hclsyntax gives for the whole file. It reports whether
// the piecewise parse was used.
func checkPieces(t *testing.T, src []byte, chunk int) bool {
	t.Helper()
	const name = "testdata/pieces.hcl"
	f, diags := hclsyntax.ParseConfig(src, name, hcl.InitialPos)
	got, ok := parsePieces(src, name, chunk)
	if !ok {
		return false
	}
	if diags.HasErrors() || len(diags) > 0 {
		t.Fatalf("chunk %d: pieces parsed cleanly, whole file has diagnostics: %v\n%s", chunk, diags, src)
	}
	if want := f.Body.(*hclsyntax.Body); !reflect.DeepEqual(got, want) {
		t.Fatalf("chunk %d: piecewise body differs from whole-file body\n%s", chunk, src)
	}
	return true
}

func pieceInputs(t testing.TB) map[string][]byte {
	in := map[string][]byte{}
	for _, pat := range []string{"testdata/*.hcl", "testdata/*/*.hcl"} {
		ps, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			in[p] = b
		}
	}
	// Lines that look like top-level items but are not: each split before
	// them must be refused.
	in["heredoc"] = []byte("service \"a\" {\n  respond {\n    body = <<EOT\n}\nservice \"b\" {\n}\nEOT\n  }\n}\nentrypoint \"web\" { address = \":80\" }\n")
	in["comment"] = []byte("/*\nservice \"b\" {\n}\n*/\nentrypoint \"web\" { address = \":80\" }\n# x\nentrypoint \"w2\" { address = \":81\" }\n")
	in["nested"] = []byte("service \"a\" {\nrespond {\nbody = \"x\"\n}\n}\nx = [\n1,\ny\n]\nz = 2\n")
	in["template"] = []byte("a = \"${\nb\n}\"\nc = 1\n")
	in["dup attr"] = []byte("a = 1\nb = 2\na = 3\n")
	in["crlf"] = []byte("a = 1\r\nb = \"é\"\r\n\r\nc {\r\n}\r\n")
	in["no final newline"] = []byte("a = 1\nb = 2")
	in["blank lines"] = []byte("\n\n\na = 1\n\n\nb {\n}\n\n")
	in["lone cr"] = []byte("a = 1\rb = 2\nc = 3\n")
	return in
}

func TestParsePiecesMatchesWholeFile(t *testing.T) {
	used := 0
	for name, src := range pieceInputs(t) {
		t.Run(name, func(t *testing.T) {
			for _, chunk := range []int{1, 2, 7, 64, 512} {
				if checkPieces(t, src, chunk) {
					used++
				}
			}
		})
	}
	// The check above passes vacuously if every input falls back.
	if used == 0 {
		t.Fatal("no input was parsed piecewise")
	}
	for _, name := range []string{"heredoc", "comment", "dup attr"} {
		if _, ok := parsePieces(pieceInputs(t)[name], "x.hcl", 1); ok {
			t.Errorf("%s: piecewise parse accepted a split that is not a top-level boundary", name)
		}
	}
}

// TestParseSyntaxBigFile checks the real chunk size on a file big enough
// to be split.
func TestParseSyntaxBigFile(t *testing.T) {
	var b strings.Builder
	for i := range 600 {
		fmt.Fprintf(&b, "service \"s%d\" {\n  backend \"http://127.0.0.1:%d\" {}\n}\n# comment %d\n", i, 20000+i, i)
	}
	src := []byte(b.String())
	if len(src) < 2*syntaxChunk {
		t.Fatalf("test file only %d bytes", len(src))
	}
	if !checkPieces(t, src, syntaxChunk) {
		t.Fatal("big file was not parsed piecewise")
	}
	got, diags := parseSyntax(src, "testdata/pieces.hcl")
	if len(diags) > 0 || len(got.Blocks) != 600 {
		t.Fatalf("parseSyntax: %d blocks, diags %v", len(got.Blocks), diags)
	}
	// A syntax error anywhere means the whole file is parsed in one go, so
	// the diagnostics are hclsyntax's own.
	bad := append(src[:len(src):len(src)], "service \"z\" {\n  x = [1,\n}\n"...)
	_, got2 := parseSyntax(bad, "testdata/pieces.hcl")
	_, want2 := hclsyntax.ParseConfig(bad, "testdata/pieces.hcl", hcl.InitialPos)
	if !want2.HasErrors() || !reflect.DeepEqual(got2, want2) {
		t.Fatalf("diagnostics differ:\n got  %v\n want %v", got2, want2)
	}
}

// FuzzParsePieces checks piecewise parsing against whole-file parsing on
// arbitrary input.
func FuzzParsePieces(f *testing.F) {
	for _, src := range pieceInputs(f) {
		f.Add(src, uint8(1))
	}
	f.Fuzz(func(t *testing.T, src []byte, chunk uint8) {
		checkPieces(t, src, int(chunk)+1)
	})
}

// TestLiteralStringMatchesTemplateValue checks the shortcut in scope.eval
// against what hclsyntax itself evaluates.
func TestLiteralStringMatchesTemplateValue(t *testing.T) {
	for _, src := range []string{`"plain"`, `""`, `"$${x}"`, `"%%{y}"`, `"e\u0301"`, `"tab\tq\"uote"`, `"a${1}"`, `"${"x"}"`, `<<EOT
heredoc
EOT
`} {
		e, diags := hclsyntax.ParseExpression([]byte(src), "x.hcl", hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatalf("%s: %v", src, diags)
		}
		want, diags := e.Value(nil)
		if diags.HasErrors() {
			t.Fatalf("%s: %v", src, diags)
		}
		got, ok := literalString(e)
		if !ok {
			continue // evaluated the slow way
		}
		if !got.RawEquals(want) {
			t.Errorf("%s: literalString = %#v, Value = %#v", src, got, want)
		}
	}
	e, _ := hclsyntax.ParseExpression([]byte(`"plain"`), "x.hcl", hcl.InitialPos)
	if _, ok := literalString(e); !ok {
		t.Error(`literalString does not take "plain"`)
	}
}
