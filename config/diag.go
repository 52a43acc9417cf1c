package config

import (
	"slices"
	"strings"
)

// Severity of a Diagnostic.
type Severity int

const (
	SeverityError Severity = iota
	SeverityWarning
)

// Diagnostic is one problem found in a configuration, at a place.
type Diagnostic struct {
	Severity Severity `json:"severity"`
	Pos      Pos      `json:"pos"`
	// Message says what is wrong and, where it can, what was meant.
	Message string `json:"message"`
	// Err is the underlying error when there is one (e.g. a file that
	// could not be read), so errors.Is works through Diagnostics.
	Err error `json:"-"`
}

// Error formats the diagnostic as "file:line:col: message" (warnings say so).
func (d Diagnostic) Error() string {
	if d.Pos == (Pos{}) {
		if d.Severity == SeverityWarning {
			return "warning: " + d.Message
		}
		return d.Message
	}
	if d.Severity == SeverityWarning {
		return d.Pos.String() + ": warning: " + d.Message
	}
	return d.Pos.String() + ": " + d.Message
}

// Diagnostics is a list of problems; as an error it prints one per line.
type Diagnostics []Diagnostic

func (ds Diagnostics) Error() string {
	var b strings.Builder
	for i, d := range ds {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(d.Error())
	}
	return b.String()
}

// Unwrap returns the underlying errors of the diagnostics that have one.
func (ds Diagnostics) Unwrap() []error {
	var errs []error
	for _, d := range ds {
		if d.Err != nil {
			errs = append(errs, d.Err)
		}
	}
	return errs
}

// SortByPos orders ds by file, line and column; diagnostics at the same
// place keep their order. Warnings found after loading (shadowed routes)
// join the configuration's own this way, to be printed in file order.
func (ds Diagnostics) SortByPos() {
	slices.SortStableFunc(ds, func(a, b Diagnostic) int { return a.Pos.Compare(b.Pos) })
}

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == SeverityError {
			return true
		}
	}
	return false
}
