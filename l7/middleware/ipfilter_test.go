package middleware

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/proxynow/proxynow/config"
)

func trafficPrefixes(t testing.TB, cidrs ...string) []netip.Prefix {
	t.Helper()
	ps := make([]netip.Prefix, len(cidrs))
	for i, c := range cidrs {
		ps[i] = netip.MustParsePrefix(c)
	}
	return ps
}

// ipCase is one request to an ip filter.
type ipCase struct {
	name   string
	cidrs  []string
	depth  int
	remote string   // RemoteAddr; "" for an unknown client
	xff    []string // X-Forwarded-For lines
	// untrusted: the peer is not a trusted proxy (its X-Forwarded-For is
	// the client's own)
	untrusted bool
	want      int
}

func runIPCases(t *testing.T, kind string, tests []ipCase) {
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &config.IPFilter{CIDRs: trafficPrefixes(t, tt.cidrs...), Depth: tt.depth}
			m := &config.Middleware{Name: "f", Kind: kind, IPAllow: f}
			if kind == config.MWIPDeny {
				m.IPAllow, m.IPDeny = nil, f
			}
			env := trafficEnv
			env.ForwardedTrusted = func(*http.Request) bool { return !tt.untrusted }
			mw, err := Build(m, env)
			if err != nil {
				t.Fatal(err)
			}
			h := mw(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remote
			if r.RemoteAddr == "" {
				r.RemoteAddr = "@"
			}
			r.Header["X-Forwarded-For"] = tt.xff
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d", w.Code, tt.want)
			}
			if w.Code == 403 && w.Body.String() != "403 Forbidden\n" {
				t.Errorf("body %q", w.Body)
			}
		})
	}
}

func TestIPAllow(t *testing.T) {
	lan := []string{"10.0.0.0/8", "2001:db8::/32"}
	runIPCases(t, config.MWIPAllow, []ipCase{
		{name: "v4 inside", cidrs: lan, remote: "10.1.2.3:1", want: 200},
		{name: "v4 outside", cidrs: lan, remote: "11.1.2.3:1", want: 403},
		{name: "v4 first and last of the range", cidrs: []string{"192.0.2.0/24"}, remote: "192.0.2.255:1", want: 200},
		{name: "v4 just past the range", cidrs: []string{"192.0.2.0/24"}, remote: "192.0.3.0:1", want: 403},
		{name: "v6 inside", cidrs: lan, remote: "[2001:db8:1::5]:1", want: 200},
		{name: "v6 outside", cidrs: lan, remote: "[2001:db9::5]:1", want: 403},
		{name: "v4-mapped client is unmapped", cidrs: lan, remote: "[::ffff:10.9.9.9]:1", want: 200},
		{name: "v4-mapped client outside", cidrs: lan, remote: "[::ffff:11.9.9.9]:1", want: 403},
		{name: "v4-mapped cidr is unmapped", cidrs: []string{"::ffff:10.0.0.0/104"}, remote: "10.200.0.1:1", want: 200},
		{name: "v6 all does not match v4", cidrs: []string{"::/0"}, remote: "10.0.0.1:1", want: 403},
		{name: "v4 all does not match v6", cidrs: []string{"0.0.0.0/0"}, remote: "[2001:db8::1]:1", want: 403},
		{name: "v4 all", cidrs: []string{"0.0.0.0/0"}, remote: "255.255.255.255:1", want: 200},
		{name: "v6 all", cidrs: []string{"::/0"}, remote: "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:1", want: 200},
		{name: "single host", cidrs: []string{"192.0.2.7/32"}, remote: "192.0.2.7:1", want: 200},
		{name: "single host neighbour", cidrs: []string{"192.0.2.7/32"}, remote: "192.0.2.8:1", want: 403},
		{name: "unmasked cidr", cidrs: []string{"192.0.2.77/24"}, remote: "192.0.2.1:1", want: 200},
		{name: "zone ignored", cidrs: []string{"fe80::/10"}, remote: "[fe80::1%eth0]:1", want: 200},
		{name: "unknown client", cidrs: []string{"0.0.0.0/0", "::/0"}, remote: "", want: 403},
		{name: "xff ignored without depth", cidrs: lan, remote: "11.0.0.1:1", xff: []string{"10.0.0.1"}, want: 403},
		{name: "depth 1 is the rightmost", cidrs: lan, depth: 1, remote: "11.0.0.1:1", xff: []string{"11.1.1.1, 10.0.0.1"}, want: 200},
		{name: "depth 2", cidrs: lan, depth: 2, remote: "10.0.0.1:1", xff: []string{"11.1.1.1, 10.0.0.2, 10.0.0.1"}, want: 200},
		{name: "depth 2 outside", cidrs: lan, depth: 2, remote: "10.0.0.1:1", xff: []string{"10.0.0.3, 11.1.1.1, 10.0.0.1"}, want: 403},
		{name: "depth across header lines", cidrs: lan, depth: 3, remote: "11.0.0.1:1", xff: []string{"10.0.0.3", "11.1.1.1, 11.1.1.2"}, want: 200},
		{name: "depth beyond the entries", cidrs: lan, depth: 3, remote: "10.0.0.1:1", xff: []string{"10.0.0.2, 10.0.0.1"}, want: 403},
		{name: "depth without the header", cidrs: lan, depth: 1, remote: "10.0.0.1:1", want: 403},
		{name: "depth from an untrusted peer", cidrs: lan, depth: 1, remote: "11.0.0.1:1", xff: []string{"10.0.0.1"}, untrusted: true, want: 403},
		{name: "depth 2 from an untrusted peer", cidrs: lan, depth: 2, remote: "10.0.0.1:1", xff: []string{"10.0.0.2, 11.0.0.1"}, untrusted: true, want: 403},
		{name: "depth entry with a port", cidrs: lan, depth: 1, remote: "11.0.0.1:1", xff: []string{"10.0.0.1:4711"}, want: 200},
		{name: "depth v6 entry with a port", cidrs: lan, depth: 1, remote: "11.0.0.1:1", xff: []string{"[2001:db8::1]:4711"}, want: 200},
		{name: "depth bracketed v6 entry", cidrs: lan, depth: 1, remote: "11.0.0.1:1", xff: []string{"[2001:db8::1]"}, want: 200},
		{name: "depth mapped entry", cidrs: lan, depth: 1, remote: "11.0.0.1:1", xff: []string{"::ffff:10.0.0.1"}, want: 200},
		{name: "depth garbage entry", cidrs: []string{"0.0.0.0/0"}, depth: 1, remote: "10.0.0.1:1", xff: []string{"unknown"}, want: 403},
		{name: "depth empty entry", cidrs: []string{"0.0.0.0/0"}, depth: 2, remote: "10.0.0.1:1", xff: []string{"10.0.0.2,, 10.0.0.1"}, want: 403},
	})
}

func TestIPDeny(t *testing.T) {
	bad := []string{"192.0.2.0/24", "2001:db8:bad::/48"}
	runIPCases(t, config.MWIPDeny, []ipCase{
		{name: "v4 denied", cidrs: bad, remote: "192.0.2.9:1", want: 403},
		{name: "v4 allowed", cidrs: bad, remote: "198.51.100.1:1", want: 200},
		{name: "v6 denied", cidrs: bad, remote: "[2001:db8:bad::1]:1", want: 403},
		{name: "v6 allowed", cidrs: bad, remote: "[2001:db8:600d::1]:1", want: 200},
		{name: "v4-mapped client denied", cidrs: bad, remote: "[::ffff:192.0.2.9]:1", want: 403},
		{name: "v4-mapped cidr denies v4", cidrs: []string{"::ffff:192.0.2.0/120"}, remote: "192.0.2.9:1", want: 403},
		{name: "xff is not the client", cidrs: bad, remote: "198.51.100.1:1", xff: []string{"192.0.2.9"}, want: 200},
		{name: "unknown client is not in the list", cidrs: bad, remote: "", want: 200},
	})
}

func TestIPFilterConfig(t *testing.T) {
	for _, tt := range []struct {
		name string
		m    config.Middleware
		want string
	}{
		{"allow without cidrs", config.Middleware{Kind: config.MWIPAllow, IPAllow: &config.IPFilter{}}, "cidrs must not be empty"},
		{"negative depth", config.Middleware{Kind: config.MWIPAllow, IPAllow: &config.IPFilter{CIDRs: trafficPrefixes(t, "::/0"), Depth: -1}}, "depth must be at least 0"},
		{"deny with depth", config.Middleware{Kind: config.MWIPDeny, IPDeny: &config.IPFilter{CIDRs: trafficPrefixes(t, "::/0"), Depth: 1}}, "ip_allow only"},
		{"invalid prefix", config.Middleware{Kind: config.MWIPDeny, IPDeny: &config.IPFilter{CIDRs: []netip.Prefix{{}}}}, "invalid CIDR"},
		{"deny missing block", config.Middleware{Kind: config.MWIPDeny}, "missing block"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build(&tt.m, trafficEnv)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// TestTrafficCIDRSetMatchesContains checks the merged ranges against
// netip.Prefix.Contains on random, heavily overlapping prefixes.
func TestTrafficCIDRSetMatchesContains(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// Addresses from a small space so that prefixes overlap and abut.
	v4 := func() netip.Addr { return netip.AddrFrom4([4]byte{10, 0, byte(rng.IntN(4)), byte(rng.IntN(256))}) }
	v6 := func() netip.Addr {
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(rng.IntN(256)), 7: byte(rng.IntN(4))})
	}
	for round := range 200 {
		var ps []netip.Prefix
		for range 1 + rng.IntN(12) {
			if rng.IntN(2) == 0 {
				ps = append(ps, netip.PrefixFrom(v4(), 20+rng.IntN(13)))
			} else {
				ps = append(ps, netip.PrefixFrom(v6(), 50+rng.IntN(79)))
			}
		}
		set, err := newTrafficCIDRSet(ps)
		if err != nil {
			t.Fatal(err)
		}
		for range 200 {
			a := v4()
			if rng.IntN(2) == 0 {
				a = v6()
			}
			want := false
			for _, p := range ps {
				want = want || p.Contains(a)
			}
			if got := set.contains(a); got != want {
				t.Fatalf("round %d: %v in %v: %v, want %v (ranges %+v)", round, a, ps, got, want, set)
			}
		}
	}
}

func BenchmarkIPAllow(b *testing.B) {
	for _, n := range []int{3, 1000} {
		for _, depth := range []int{0, 2} {
			b.Run(fmt.Sprintf("cidrs=%d/depth=%d", n, depth), func(b *testing.B) {
				ps := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
				for i := len(ps); i < n; i++ {
					ps = append(ps, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i >> 8), byte(i), 0}), 25)) // disjoint: 1000 ranges after merging
				}
				mw, err := newIPAllow(&config.Middleware{IPAllow: &config.IPFilter{CIDRs: ps, Depth: depth}}, Env{ClientIP: remoteIP})
				if err != nil {
					b.Fatal(err)
				}
				h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				r.RemoteAddr = "10.1.2.3:4567"
				r.Header.Set("X-Forwarded-For", "203.0.113.9, 10.4.5.6, 192.0.2.1")
				w := &trafficBenchWriter{h: http.Header{}}
				b.ReportAllocs()
				for b.Loop() {
					h.ServeHTTP(w, r)
				}
				if w.code != 0 {
					b.Fatalf("refused: %d", w.code)
				}
			})
		}
	}
}

// FuzzTrafficXFFAt compares the allocation-free X-Forwarded-For walk with
// the obvious join-and-split.
func FuzzTrafficXFFAt(f *testing.F) {
	for _, s := range []string{"", "10.0.0.1", "10.0.0.1, 10.0.0.2", " ,,", "[2001:db8::1]:80, ::ffff:1.2.3.4", "a,b\n10.0.0.1:1"} {
		f.Add(s, 1)
		f.Add(s, 2)
	}
	f.Fuzz(func(t *testing.T, header string, depth int) {
		if depth <= 0 || depth > 64 {
			return
		}
		lines := strings.Split(header, "\n")
		var want netip.Addr
		if entries := strings.Split(strings.Join(lines, ","), ","); depth <= len(entries) {
			want = trafficParseXFFEntry(strings.TrimSpace(entries[len(entries)-depth]))
		}
		if got := trafficXFFAt(lines, depth); got != want {
			t.Fatalf("trafficXFFAt(%q, %d) = %v, want %v", lines, depth, got, want)
		}
	})
}
