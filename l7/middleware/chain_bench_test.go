package middleware

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/proxynow/proxynow/config"
)

// BenchmarkChain is the five-middleware chain (headers,
// strip_prefix, rate_limit, ip_allow, basic_auth with a cached
// verification) in front of a handler that does nothing: the chain's own
// cost per request.
func BenchmarkChain(b *testing.B) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	blocks := []*config.Middleware{
		{Name: "h", Kind: config.MWHeaders, Headers: &config.Headers{
			Request:  config.HeaderOps{Set: map[string]string{"X-A": "1"}},
			Response: config.HeaderOps{Set: map[string]string{"X-B": "2"}}}},
		{Name: "s", Kind: config.MWStripPrefix, StripPrefix: &config.StripPrefix{Prefixes: []string{"/api"}}},
		{Name: "r", Kind: config.MWRateLimit, RateLimit: &config.RateLimit{Average: 1 << 30, Burst: 1 << 20, Period: time.Second}},
		{Name: "i", Kind: config.MWIPAllow, IPAllow: &config.IPFilter{CIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}},
		{Name: "a", Kind: config.MWBasicAuth, BasicAuth: &config.BasicAuth{Users: []string{"u:" + string(hash)}, Realm: "r", StripHeader: true}},
	}
	var mws []Middleware
	for _, m := range blocks {
		mw, err := Build(m, Env{})
		if err != nil {
			b.Fatal(err)
		}
		mws = append(mws, mw)
	}
	noop := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{{"none", noop}, {"five", Chain(mws...)(noop)}} {
		b.Run(tc.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", "/api/users/1", nil)
			req.RemoteAddr = "127.0.0.1:1234"
			req.SetBasicAuth("u", "pw")
			w := httptest.NewRecorder()
			tc.h.ServeHTTP(w, req) // warm the auth cache
			b.ReportAllocs()
			for b.Loop() {
				w.Header().Del("X-B")
				tc.h.ServeHTTP(w, req)
			}
			if w.Code != 200 {
				b.Fatalf("status %d", w.Code)
			}
		})
	}
}
