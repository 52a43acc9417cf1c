package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// maxFileFuncSize bounds what file() reads: it is meant for secrets and
// small snippets, not for pulling arbitrary data into the process.
const maxFileFuncSize = 1 << 20

// errNotRegular refuses devices, FIFOs and directories as files to read.
var errNotRegular = errors.New("not a regular file")

// sources is where env(), file() and checkFiles read from; tests replace
// it.
type sources struct {
	lookupEnv func(string) (string, bool)
	readFile  func(string) ([]byte, error)
	now       func() time.Time // nil means time.Now
}

// evalContext returns the functions available in expressions of a config
// file that lives in dir. Variables are not offered: a config names no
// values other than through env() and file(). chomp() and trimspace()
// (Terraform's) take off the newline that a secret file written with echo
// ends with, which a header value or an address cannot hold.
func (s sources) evalContext(dir string) *hcl.EvalContext {
	return &hcl.EvalContext{
		Functions: map[string]function.Function{
			"env":       s.envFunc(),
			"file":      s.fileFunc(dir),
			"chomp":     stdlib.ChompFunc,
			"trimspace": stdlib.TrimSpaceFunc,
		},
	}
}

// envFunc is env("NAME"): the value of an environment variable. An unset
// variable is an error (an empty one is not), so a typo in a name cannot
// silently become an empty password.
func (s sources) envFunc() function.Function {
	return function.New(&function.Spec{
		Description: "Returns the value of an environment variable.",
		Params:      []function.Parameter{{Name: "name", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			name := args[0].AsString()
			if name == "" {
				return cty.NilVal, errors.New("variable name is empty")
			}
			v, ok := s.lookupEnv(name)
			if !ok {
				return cty.NilVal, fmt.Errorf("environment variable %q is not set", name)
			}
			if !utf8.ValidString(v) {
				return cty.NilVal, fmt.Errorf("environment variable %q is not valid UTF-8", name)
			}
			return cty.StringVal(v), nil
		},
	})
}

// fileFunc is file("path"): the contents of a file, verbatim (a trailing
// newline is kept). A relative path is relative to the directory of the
// config file that calls it, not to the working directory.
func (s sources) fileFunc(dir string) function.Function {
	return function.New(&function.Spec{
		Description: "Returns the contents of a file relative to the config file.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p := args[0].AsString()
			if p == "" {
				return cty.NilVal, errors.New("path is empty")
			}
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			b, err := s.readFile(p)
			if err != nil {
				return cty.NilVal, err
			}
			if len(b) > maxFileFuncSize {
				return cty.NilVal, fmt.Errorf("file %s is larger than %d bytes", p, maxFileFuncSize)
			}
			if !utf8.Valid(b) {
				return cty.NilVal, fmt.Errorf("file %s is not valid UTF-8", p)
			}
			return cty.StringVal(string(b)), nil
		},
	})
}

// readFileLimited reads a regular file of at most maxFileFuncSize+1 bytes:
// file("/dev/zero") or a FIFO must fail, not exhaust memory or block.
func readFileLimited(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is %w", p, errNotRegular)
	}
	return io.ReadAll(io.LimitReader(f, maxFileFuncSize+1))
}
