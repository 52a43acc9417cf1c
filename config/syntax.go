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
	var (
		out   *hclsyntax.Body
		start = hcl.InitialPos
	)
	for start.Byte < len(src) {
		end := pieceEnd(src, start.Byte, chunk)
		f, diags := hclsyntax.ParseConfig(src[start.Byte:end], filename, start)
		if len(diags) > 0 || f == nil {
			return nil, false
		}
		b, ok := f.Body.(*hclsyntax.Body)
		if !ok {
			return nil, false
		}
		next := hcl.Pos{Line: start.Line + bytes.Count(src[start.Byte:end], []byte{'\n'}), Column: 1, Byte: end}
		if end < len(src) && b.EndRange.End != next {
			return nil, false
		}
		if out == nil {
			out = b
		} else {
			for name, a := range b.Attributes {
				if _, dup := out.Attributes[name]; dup {
					return nil, false // let hclsyntax report "Attribute redefined"
				}
				out.Attributes[name] = a
			}
			out.Blocks = append(out.Blocks, b.Blocks...)
			// ParseBody's top-level ranges run from the first token to EOF.
			out.SrcRange = hcl.RangeBetween(out.SrcRange, b.SrcRange)
			out.EndRange = b.EndRange
		}
		start = next
	}
	return out, out != nil
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
