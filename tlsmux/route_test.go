package tlsmux

import (
	"fmt"
	"testing"
)

// hello builds a ClientHello as the parser would fill it.
func hello(sni string, alpn ...string) *ClientHello {
	h := &ClientHello{}
	if sni != "" {
		h.ServerName = []byte(sni)
	}
	for _, p := range alpn {
		h.alpn[h.nALPN] = []byte(p)
		h.nALPN++
	}
	return h
}

func TestMatch(t *testing.T) {
	routes := []Route{
		{Name: "exact", SNI: []string{"a.test"}},
		{Name: "exact-h2", SNI: []string{"a.test"}, ALPN: []string{"h2"}},
		{Name: "exact-x", SNI: []string{"a.test"}, ALPN: []string{"x-custom", "x-other"}},
		{Name: "wild", SNI: []string{"*.a.test"}},
		{Name: "wild-only-alpn", SNI: []string{"*.b.test"}, ALPN: []string{"h2"}},
		{Name: "any", ALPN: []string{"imap"}},
		{Name: "plain", Mode: Plain},
	}
	tb, err := compile(routes)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		h    *ClientHello
		want string // "" means no route
	}{
		{name: "exact", h: hello("a.test"), want: "exact"},
		{name: "exact upper case with dot", h: hello("A.Test."), want: "exact"},
		{name: "alpn picks", h: hello("a.test", "h2"), want: "exact-h2"},
		{name: "client order of alpn wins", h: hello("a.test", "x-other", "h2"), want: "exact-x"},
		{name: "unknown alpn falls back", h: hello("a.test", "http/1.1"), want: "exact"},
		{name: "wildcard", h: hello("x.a.test"), want: "wild"},
		{name: "wildcard is one label", h: hello("y.x.a.test")},
		{name: "wildcard needs its alpn", h: hello("x.b.test", "http/1.1")},
		{name: "wildcard with alpn", h: hello("x.b.test", "h2"), want: "wild-only-alpn"},
		{name: "catch-all by alpn", h: hello("other.test", "imap"), want: "any"},
		{name: "no sni no match", h: hello("")},
		{name: "plain is not a TLS route", h: hello("zzz.test")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tb.match(tt.h)
			got := ""
			if r != nil {
				got = r.Name
			}
			if got != tt.want {
				t.Fatalf("matched %q, want %q", got, tt.want)
			}
		})
	}
}

// BenchmarkMatch looks up among 10,000 SNI routes; it must not allocate.
func BenchmarkMatch(b *testing.B) {
	var routes []Route
	for i := range 5000 {
		routes = append(routes, Route{Name: fmt.Sprint(i), SNI: []string{fmt.Sprintf("host%d.example.com", i), fmt.Sprintf("*.w%d.example.com", i)}})
	}
	tb, err := compile(routes)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct{ name, sni string }{{"exact", "HOST4242.example.com"}, {"wildcard", "x.w4242.example.com"}, {"miss", "nope.example.org"}} {
		b.Run(tc.name, func(b *testing.B) {
			h := hello(tc.sni, "h2", "http/1.1")
			b.ReportAllocs()
			for b.Loop() {
				tb.match(h)
			}
		})
	}
}
