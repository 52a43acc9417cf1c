package l7

import "testing"

// A response field value with a line break or NUL is written with spaces
// in their place (writeValue); hasLineBreakOrNUL decides which values.
func TestHasLineBreakOrNUL(t *testing.T) {
	for _, v := range []string{"", "a", "text/plain; charset=utf-8", "\t \x0b\x0c\x01\x1f\x7f\xff", "é"} {
		if hasLineBreakOrNUL(v) {
			t.Errorf("%q: reported a line break or NUL", v)
		}
	}
	for _, v := range []string{"\r", "\n", "\x00", "a\rb", "ab\n", "\x00ab", "x\r\n"} {
		if !hasLineBreakOrNUL(v) {
			t.Errorf("%q: line break or NUL not reported", v)
		}
	}
}
