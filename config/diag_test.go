package config

import (
	"slices"
	"testing"
)

// TestSortByPos: by file, line and column; diagnostics at one place keep
// their order.
func TestSortByPos(t *testing.T) {
	at := func(file string, line, col int, msg string) Diagnostic {
		return Diagnostic{Severity: SeverityWarning, Pos: Pos{File: file, Line: line, Col: col}, Message: msg}
	}
	ds := Diagnostics{
		at("b.hcl", 1, 1, "b1"),
		at("a.hcl", 7, 12, "route 2"),
		at("a.hcl", 15, 9, "unused"),
		at("a.hcl", 7, 12, "route 1"),
		at("a.hcl", 7, 3, "col 3"),
		at("", 0, 0, "no place"),
	}
	ds.SortByPos()
	var got []string
	for _, d := range ds {
		got = append(got, d.Message)
	}
	want := []string{"no place", "col 3", "route 2", "route 1", "unused", "b1"}
	if !slices.Equal(got, want) {
		t.Errorf("order %q, want %q", got, want)
	}
}
