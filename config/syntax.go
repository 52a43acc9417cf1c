package config

import (
	"bytes"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// syntaxChunk is the smallest piece parseSyntax hands to the HCL parser.
// hclsyntax lexes a whole file into one token slice grown by append; for a
// 10,000-route file that slice is ~35 MB and its growth (×1.25 steps)
// allocates about five times that, all of it garbage once the parse is done.
// Parsing the file in pieces of about a kilobyte keeps each token slice small
// and short-lived.
const syntaxChunk = 1 << 10

// parseSyntax is hclsyntax.ParseConfig(src, filename, hcl.InitialPos), done
// piecewise when that gives the same result. It splits src only before a
// line that starts with an identifier, parses each piece at its true start
// position, and merges the top-level bodies. A split is trusted only if
// every piece parses with no diagnostic at all and each piece ends (its EOF
// position) exactly where the next one starts: a split inside a block,
// heredoc, comment or bracketed expression leaves the piece before it
// unclosed, which is a syntax error. A top-level argument repeated across
// pieces also falls back. On any doubt the whole file is parsed in one go,
// so diagnostics are exactly hclsyntax's own.
//
// Load does not merge the pieces: it decodes each as it is parsed
// (syntaxDecode). parseSyntax's merged tree is what the syntax tests hold
// against hclsyntax's one-shot parse, which proves the pieces' trees.
func parseSyntax(src []byte, filename string) (*hclsyntax.Body, hcl.Diagnostics) {
	if len(src) >= 2*syntaxChunk {
		if b, ok := parsePieces(src, filename, syntaxChunk); ok {
			return b, nil
		}
	}
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if f == nil {
		return nil, diags
	}
	b, _ := f.Body.(*hclsyntax.Body)
	return b, diags
}

func parsePieces(src []byte, filename string, chunk int) (*hclsyntax.Body, bool) {
	var out *hclsyntax.Body
	ok := eachPiece(src, filename, chunk, func(b *hclsyntax.Body) {
		if out == nil {
			out = b
			return
		}
		for name, a := range b.Attributes {
			out.Attributes[name] = a
		}
		out.Blocks = append(out.Blocks, b.Blocks...)
		// ParseBody's top-level ranges run from the first token to EOF.
		out.SrcRange = hcl.RangeBetween(out.SrcRange, b.SrcRange)
		out.EndRange = b.EndRange
	})
	return out, ok && out != nil
}

// eachPiece parses src in pieces of at least chunk bytes and hands each
// piece's top-level body to f, in order. It returns false, having stopped,
// at the first piece that gives any doubt that the pieces parse as the
// whole file would (see parseSyntax); f may have had earlier pieces.
func eachPiece(src []byte, filename string, chunk int, f func(*hclsyntax.Body)) bool {
	attrs := map[string]bool{}
	start := hcl.InitialPos
	for start.Byte < len(src) {
		end := pieceEnd(src, start.Byte, chunk)
		file, diags := hclsyntax.ParseConfig(src[start.Byte:end], filename, start)
		b, ok := bodyOf(file)
		if len(diags) > 0 || !ok {
			return false
		}
		next := hcl.Pos{Line: start.Line + bytes.Count(src[start.Byte:end], []byte{'\n'}), Column: 1, Byte: end}
		if end < len(src) && b.EndRange.End != next {
			return false
		}
		for name := range b.Attributes {
			if attrs[name] {
				return false // let hclsyntax report "Attribute redefined"
			}
			attrs[name] = true
		}
		f(b)
		start = next
	}
	return true
}

// pieceEnd is the first offset at least chunk bytes after from that starts
// a line beginning with an identifier character, or len(src).
func pieceEnd(src []byte, from, chunk int) int {
	for i := from + chunk; i < len(src); {
		nl := bytes.IndexByte(src[i-1:], '\n')
		if nl < 0 {
			break
		}
		i += nl
		if i < len(src) && identStart(src[i]) {
			return i
		}
		i++
	}
	return len(src)
}

func identStart(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// syntaxDecode parses s and decodes it into d (unless it has syntax
// errors), returning the syntax diagnostics. A file large enough is
// parsed in parsePieces' pieces, each decoded as soon as it is parsed and
// its syntax tree then dropped: the trees of a whole 10,000-route file
// (38 MB live, most of the startup's peak memory) never exist together.
// ok is false when a piece does not parse as it would within the whole
// file (parsePieces' checks) after earlier pieces were decoded: the caller
// decodes again from a new decoder, with whole set for s.
func (d *decoder) syntaxDecode(s Source, whole bool) (_ hcl.Diagnostics, ok bool) {
	if whole || len(s.Src) < 2*syntaxChunk {
		f, diags := hclsyntax.ParseConfig(s.Src, s.Filename, hcl.InitialPos)
		if b, isBody := bodyOf(f); isBody && !diags.HasErrors() {
			d.file(s.Filename, b)
		}
		return diags, true
	}
	d.beginFile(s.Filename)
	return nil, eachPiece(s.Src, s.Filename, syntaxChunk, d.body)
}

func bodyOf(f *hcl.File) (*hclsyntax.Body, bool) {
	if f == nil {
		return nil, false
	}
	b, ok := f.Body.(*hclsyntax.Body)
	return b, ok
}
