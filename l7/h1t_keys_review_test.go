package l7

import (
	"net/textproto"
	"strings"
	"testing"
	"unsafe"
)

// canonicalKey keeps a name already canonical as the very string it was
// given (the head's substring), common or not; gives a common name in
// another case commonKeys' string; and allocates for neither.
func TestCanonicalKeyKeepsOrInterns(t *testing.T) {
	for k := range commonKeys {
		head := "X: " + k // k as a substring of a larger string, as in a head
		in := head[3:]
		got, ok := canonicalKey(in)
		if !ok || got != k || unsafe.StringData(got) != unsafe.StringData(in) {
			t.Errorf("canonicalKey(%q) = %q, %v: not the given string", in, got, ok)
		}
		for _, other := range []string{strings.ToLower(k), strings.ToUpper(k)} {
			if other == k {
				continue
			}
			got, ok := canonicalKey(other)
			if !ok || got != k || unsafe.StringData(got) != unsafe.StringData(commonKeys[k]) {
				t.Errorf("canonicalKey(%q) = %q, %v: not commonKeys' string", other, got, ok)
			}
		}
	}
	for _, k := range []string{"Content-Type", "content-type", "X-Custom", "Sec-Ch-Ua-Platform"} {
		if n := testing.AllocsPerRun(100, func() { canonicalKey(k) }); n != 0 {
			t.Errorf("canonicalKey(%q): %v allocations", k, n)
		}
	}
}

// FuzzCanonicalKey: canonicalKey is net/textproto's canonicalization for a
// name it accepts; it refuses a name textproto would leave as it is for
// holding a byte that is neither a token byte nor a space.
func FuzzCanonicalKey(f *testing.F) {
	for _, s := range []string{"content-type", "Content-Type", "CONTENT-TYPE", "x-a-", "-x", "a b", "Te", "tE", "a\x00", "",
		"x-" + strings.Repeat("abc", 30)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, k string) {
		got, ok := canonicalKey(k)
		valid := k != ""
		for i := 0; i < len(k); i++ {
			if !tokenByte[k[i]] && k[i] != ' ' {
				valid = false
			}
		}
		if ok != valid {
			t.Fatalf("canonicalKey(%q) ok = %v, want %v", k, ok, valid)
		}
		if ok && got != textproto.CanonicalMIMEHeaderKey(k) {
			t.Fatalf("canonicalKey(%q) = %q, textproto %q", k, got, textproto.CanonicalMIMEHeaderKey(k))
		}
	})
}
