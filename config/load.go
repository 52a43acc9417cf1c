package config

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Source is one configuration file held in memory.
type Source struct {
	// Filename is used in positions and as the base for file() paths.
	Filename string
	Src      []byte
}

// Load reads the given files and returns the validated configuration. A
// directory argument stands for every *.hcl file directly in it, in sorted
// order. Names of entrypoints, routes and services are global across all
// files.
//
// On any error Load returns nil and a Diagnostics value holding every error
// found, sorted by file, line and column. Warnings of a successful load are
// in Config.Warnings.
func Load(paths ...string) (*Config, error) {
	if len(paths) == 0 {
		return nil, Diagnostics{{Severity: SeverityError, Message: "no configuration file given"}}
	}
	var (
		srcs  []Source
		diags Diagnostics
	)
	for _, p := range paths {
		files, err := expand(p)
		if err != nil {
			diags = append(diags, fileError(p, err))
			continue
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				diags = append(diags, fileError(f, err))
				continue
			}
			srcs = append(srcs, Source{Filename: f, Src: b})
		}
	}
	if diags.HasErrors() {
		return nil, sortDiags(diags)
	}
	return parse(srcs, osSources())
}

// Parse is Load for one in-memory file; filename appears in positions and
// file() paths are relative to its directory.
func Parse(filename string, src []byte) (*Config, error) {
	return parse([]Source{{Filename: filename, Src: src}}, osSources())
}

// ParseFiles is Load for several in-memory files, in the order given.
func ParseFiles(files ...Source) (*Config, error) {
	if len(files) == 0 {
		return nil, Diagnostics{{Severity: SeverityError, Message: "no configuration file given"}}
	}
	return parse(files, osSources())
}

func osSources() sources {
	return sources{lookupEnv: os.LookupEnv, readFile: readFileLimited, now: time.Now}
}

// expand turns a directory into its *.hcl files, sorted.
func expand(p string) ([]string, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return []string{p}, nil
	}
	ents, err := os.ReadDir(p)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".hcl") {
			out = append(out, filepath.Join(p, e.Name()))
		}
	}
	if len(out) == 0 {
		return nil, errors.New("directory holds no *.hcl file")
	}
	sort.Strings(out)
	return out, nil
}

func fileError(p string, err error) Diagnostic {
	var pe *os.PathError
	if errors.As(err, &pe) {
		// The path is already in Pos; do not say it twice.
		err = fmt.Errorf("cannot %s: %w", pe.Op, pe.Err)
	}
	return Diagnostic{Severity: SeverityError, Pos: Pos{File: p}, Message: err.Error(), Err: err}
}

// parse runs the pipeline: syntax -> decode -> defaults -> validate ->
// check files -> build. A large file is parsed and decoded piece by piece
// (syntaxDecode).
func parse(srcs []Source, env sources) (*Config, error) {
	whole := make([]bool, len(srcs)) // files parsed in one go
	var (
		d     *decoder
		diags Diagnostics
	)
	for again := true; again; {
		again = false
		d, diags = newDecoder(env), nil
		for i, s := range srcs {
			hd, ok := d.syntaxDecode(s, whole[i])
			if !ok {
				// Its pieces do not parse as the file does: decode
				// everything again with the file parsed in one go.
				whole[i], again = true, true
				break
			}
			diags = append(diags, fromHCL("", hd)...)
		}
	}
	if diags.HasErrors() {
		// Decoding a body with syntax errors would only add noise: only
		// the syntax errors are reported.
		return nil, sortDiags(diags)
	}
	applyDefaults(&d.out)
	diags = append(diags, d.diags...)
	diags = append(diags, validate(&d.out)...)
	diags = append(diags, checkFiles(&d.out, env)...)
	var errs, warns Diagnostics
	for _, x := range diags {
		if x.Severity == SeverityError {
			errs = append(errs, x)
		} else {
			warns = append(warns, x)
		}
	}
	if len(errs) > 0 {
		return nil, sortDiags(errs)
	}
	return build(&d.out, sortDiags(warns)), nil
}

// sortDiags orders diagnostics by file, line, column and message, and
// drops exact duplicates.
func sortDiags(ds Diagnostics) Diagnostics {
	slices.SortStableFunc(ds, func(a, b Diagnostic) int {
		return cmp.Or(
			a.Pos.Compare(b.Pos),
			cmp.Compare(a.Severity, b.Severity),
			cmp.Compare(a.Message, b.Message),
		)
	})
	return slices.CompactFunc(ds, func(a, b Diagnostic) bool {
		return a.Pos == b.Pos && a.Severity == b.Severity && a.Message == b.Message
	})
}

func posOf(r hcl.Range) Pos {
	return Pos{File: r.Filename, Line: r.Start.Line, Col: r.Start.Column}
}

// fromHCL converts HCL's diagnostics to ours. ctx names the attribute being
// evaluated ("" for syntax errors).
func fromHCL(ctx string, hd hcl.Diagnostics) Diagnostics {
	var out Diagnostics
	for _, h := range hd {
		sev := SeverityError
		if h.Severity == hcl.DiagWarning {
			sev = SeverityWarning
		}
		var p Pos
		if h.Subject != nil {
			p = posOf(*h.Subject)
		}
		msg := hclMessage(h)
		if ctx != "" {
			msg = ctx + ": " + msg
		}
		out = append(out, Diagnostic{Severity: sev, Pos: p, Message: msg})
	}
	return out
}

func hclMessage(h *hcl.Diagnostic) string {
	if x, ok := hcl.DiagnosticExtra[hclsyntax.FunctionCallDiagExtra](h); ok && x.FunctionCallError() != nil {
		return x.CalledFunctionName() + "(): " + sentence(x.FunctionCallError().Error())
	}
	msg := sentence(h.Summary)
	if d := sentence(h.Detail); d != "" {
		msg += ": " + d
	}
	return msg
}

// sentence adapts a message to our style: lower-case start, no trailing
// period, one line.
func sentence(s string) string {
	s = strings.TrimSpace(strings.ReplaceAll(s, "\n", " "))
	s = strings.TrimSuffix(s, ".")
	if len(s) > 1 && s[0] >= 'A' && s[0] <= 'Z' && !(s[1] >= 'A' && s[1] <= 'Z') {
		s = strings.ToLower(s[:1]) + s[1:]
	}
	return s
}
