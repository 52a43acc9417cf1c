package middleware

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/proxynow/proxynow/config"
)

// Hashes of the tests: bcrypt at cost 4 (fast), SHA-256 crypt made by
// `openssl passwd -5`.
const (
	baAliceBcrypt   = "$2a$04$YF7xnrBRJTK/Jg/PSDm..uFb/T3ZHOMwS3nk7hc6CWxVWgNtvvl5S" // secret
	baBobBcrypt2y   = "$2y$04$qe2DTuYAa62KMR/TQuYYS.aVjHkoVo.HAezvqyzjVSfrBKhGsnq2O" // hunter2
	baCarolSHA      = "$5$pn0salt$Kya.AN3cNQ4KvWPgoGCzUkuVd6s3JSuF.TrUqFQNUU9"       // secret
	baDaveSHARounds = "$5$rounds=1000$pn1salt$rr28c5gKXzuzYP3.ZmIw3YS.7DupBGUA4pLYBBaS3m4"
	baBcryptCost10  = "$2a$10$3YoxIbb4WejfMjbFgjcSJ.Eu3uVna63GHGvJB9xZJJIwaOTYx95nO" // secret
)

var baUsers = []string{
	"alice:" + baAliceBcrypt,
	"bob:" + baBobBcrypt2y,
	"carol:" + baCarolSHA,
	"dave:" + baDaveSHARounds,
}

func baBasic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// baSeen is what the backend behind basic_auth saw.
type baSeen struct {
	called bool
	header http.Header
	user   string
}

func baServe(t *testing.T, c *config.BasicAuth, auth []string, extra http.Header) (*httptest.ResponseRecorder, baSeen) {
	t.Helper()
	mw, err := Build(&config.Middleware{Name: "ba", Kind: config.MWBasicAuth, BasicAuth: c}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	var seen baSeen
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = baSeen{called: true, header: r.Header.Clone(), user: User(r)}
	}))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	for k, v := range extra {
		r.Header[k] = v
	}
	if auth != nil {
		r.Header["Authorization"] = auth
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w, seen
}

func TestBasicAuth(t *testing.T) {
	type tc struct {
		name   string
		conf   config.BasicAuth
		auth   []string // nil: no Authorization
		extra  http.Header
		wantOK bool
		user   string
		check  func(t *testing.T, seen baSeen)
	}
	std := config.BasicAuth{Users: baUsers, Realm: "proxynow", StripHeader: true, HeaderField: "X-User"}
	cases := []tc{
		{name: "bcrypt $2a$ user accepted", conf: std, auth: []string{baBasic("alice", "secret")}, wantOK: true, user: "alice"},
		{name: "bcrypt $2y$ user accepted", conf: std, auth: []string{baBasic("bob", "hunter2")}, wantOK: true, user: "bob"},
		{name: "SHA-256 crypt default rounds accepted", conf: std, auth: []string{baBasic("carol", "secret")}, wantOK: true, user: "carol"},
		{name: "SHA-256 crypt rounds=1000 accepted", conf: std, auth: []string{baBasic("dave", "hunter2")}, wantOK: true, user: "dave"},
		{name: "scheme is case-insensitive", conf: std, auth: []string{"bAsIc " + strings.TrimPrefix(baBasic("alice", "secret"), "Basic ")}, wantOK: true, user: "alice"},
		{name: "several spaces after the scheme", conf: std, auth: []string{"Basic   " + strings.TrimPrefix(baBasic("alice", "secret"), "Basic ")}, wantOK: true, user: "alice"},
		{name: "password holding a colon", conf: config.BasicAuth{Users: []string{"eve:" + baBcryptColon}}, auth: []string{baBasic("eve", "a:b")}, wantOK: true, user: "eve"},
		{name: "wrong password", conf: std, auth: []string{baBasic("alice", "Secret")}},
		{name: "wrong SHA-256 crypt password", conf: std, auth: []string{baBasic("carol", "secreT")}},
		{name: "unknown user", conf: std, auth: []string{baBasic("mallory", "secret")}},
		{name: "empty user", conf: std, auth: []string{baBasic("", "secret")}},
		{name: "password of another user", conf: std, auth: []string{baBasic("alice", "hunter2")}},
		{name: "no Authorization", conf: std},
		{name: "bad base64", conf: std, auth: []string{"Basic !!!notbase64"}},
		{name: "unpadded base64", conf: std, auth: []string{strings.TrimRight(baBasic("bob", "hunter2"), "=")}},
		{name: "no colon", conf: std, auth: []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("alicesecret"))}},
		{name: "wrong scheme", conf: std, auth: []string{"Bearer " + strings.TrimPrefix(baBasic("alice", "secret"), "Basic ")}},
		{name: "scheme only", conf: std, auth: []string{"Basic"}},
		{name: "scheme and space only", conf: std, auth: []string{"Basic "}},
		{name: "two Authorization lines", conf: std, auth: []string{baBasic("alice", "secret"), baBasic("alice", "secret")}},
		{name: "oversized credentials", conf: std, auth: []string{baBasic("alice", strings.Repeat("x", 5000))}},
		{
			name: "strips Authorization and replaces a spoofed header_field", conf: std,
			auth: []string{baBasic("alice", "secret")}, extra: http.Header{"X-User": {"root", "admin"}},
			wantOK: true, user: "alice",
			check: func(t *testing.T, seen baSeen) {
				if _, ok := seen.header["Authorization"]; ok {
					t.Error("Authorization reached the backend")
				}
				if got := seen.header["X-User"]; len(got) != 1 || got[0] != "alice" {
					t.Errorf("X-User = %q, want [alice]", got)
				}
			},
		},
		{
			name: "strip_header false keeps Authorization", conf: config.BasicAuth{Users: baUsers, StripHeader: false},
			auth: []string{baBasic("alice", "secret")}, wantOK: true, user: "alice",
			check: func(t *testing.T, seen baSeen) {
				if got := seen.header.Get("Authorization"); got != baBasic("alice", "secret") {
					t.Errorf("Authorization = %q", got)
				}
				if _, ok := seen.header["X-User"]; ok {
					t.Error("X-User set without header_field")
				}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, seen := baServe(t, &c.conf, c.auth, c.extra)
			if !c.wantOK {
				if w.Code != http.StatusUnauthorized || seen.called {
					t.Fatalf("status %d, backend called %v; want 401 and no call", w.Code, seen.called)
				}
				realm := c.conf.Realm
				if realm == "" {
					realm = config.DefaultBasicAuthRealm
				}
				want := `Basic realm="` + realm + `", charset="UTF-8"`
				if got := w.Header().Values("WWW-Authenticate"); len(got) != 1 || got[0] != want {
					t.Errorf("WWW-Authenticate = %q, want %q", got, want)
				}
				return
			}
			if w.Code != http.StatusOK || !seen.called {
				t.Fatalf("status %d, backend called %v; want 200", w.Code, seen.called)
			}
			if seen.user != c.user {
				t.Errorf("User(r) = %q, want %q", seen.user, c.user)
			}
			if c.check != nil {
				c.check(t, seen)
			}
		})
	}
}

// baBcryptColon is bcrypt (cost 4) of "a:b".
var baBcryptColon = func() string {
	h, err := bcrypt.GenerateFromPassword([]byte("a:b"), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(h)
}()

// TestBasicAuthSHA256CryptVectors checks the SHA-256 crypt verifier on the
// test vectors of Drepper's specification (akkadia.org/drepper/SHA-crypt.txt),
// each also reproduced with `openssl passwd -5`. The spec's rounds=10
// vector is left out: config refuses rounds under 1000.
func TestBasicAuthSHA256CryptVectors(t *testing.T) {
	for _, v := range []struct{ name, hash, password string }{
		{"default rounds", "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5", "Hello world!"},
		{"rounds 10000", "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA", "Hello world!"},
		{"rounds 5000 written", "$5$rounds=5000$toolongsaltstrin$Un/5jzAHMgOGZ5.mWJpuVolil07guHPvOW8mGRcvxa5", "This is just a test"},
		{"rounds 1400", "$5$rounds=1400$anotherlongsalts$Rx.j8H.h8HjEDGomFU8bDkXm3XIUnzyxf12oP84Bnq1", "a very much longer text to encrypt.  This one even stretches over morethan one line."},
		{"short salt", "$5$rounds=77777$short$JiO1O3ZpDAxGJeaDIuqCoEFysAe1mZNJRs3pw0KQRd/", "we have a short salt string but not a short password"},
		{"16-character salt", "$5$rounds=123456$asaltof16chars..$gP3VQ/6X7UUEW3HkBn2w1/Ptq2jxPyzV/cZKmF/wJvD", "a short string"},
	} {
		t.Run(v.name, func(t *testing.T) {
			check, err := baVerifier(v.hash)
			if err != nil {
				t.Fatal(err)
			}
			if !check([]byte(v.password)) {
				t.Error("the right password is refused")
			}
			if check([]byte(v.password + "x")) {
				t.Error("a wrong password is accepted")
			}
		})
	}
}

func TestBasicAuthBuildErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		conf *config.BasicAuth
		want string
	}{
		{"missing block", nil, "missing block"},
		{"no users", &config.BasicAuth{}, "no users"},
		{"plain text", &config.BasicAuth{Users: []string{"alice:secret"}}, "only bcrypt and SHA-256 crypt"},
		{"MD5 crypt", &config.BasicAuth{Users: []string{"alice:$apr1$xyz$abc"}}, "only bcrypt and SHA-256 crypt"},
		{"broken bcrypt", &config.BasicAuth{Users: []string{"alice:$2y$04$short"}}, "bcrypt hash does not parse"},
		{"broken SHA-256 crypt", &config.BasicAuth{Users: []string{"alice:$5$rounds=x$salt$hash"}}, "SHA-256 crypt hash does not parse"},
		{"duplicate user", &config.BasicAuth{Users: []string{"alice:" + baAliceBcrypt, "alice:" + baAliceBcrypt}}, "listed twice"},
		{"bad realm", &config.BasicAuth{Users: baUsers, Realm: `a"b`}, "realm"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Build(&config.Middleware{Name: "ba", Kind: config.MWBasicAuth, BasicAuth: c.conf}, Env{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("the error quotes the hash: %v", err)
			}
		})
	}
}

// baCounted builds basic_auth with every verifier counting its calls.
func baCounted(t *testing.T) (*basicAuth, *atomic.Int64, *atomic.Int64) {
	t.Helper()
	a, err := buildBasicAuth(&config.BasicAuth{Users: baUsers, StripHeader: true})
	if err != nil {
		t.Fatal(err)
	}
	var checks, dummies atomic.Int64
	for _, u := range a.users {
		check := u.check
		u.check = func(pw []byte) bool { checks.Add(1); return check(pw) }
	}
	dummy := a.dummy
	a.dummy = func(pw []byte) bool { dummies.Add(1); return dummy(pw) }
	return a, &checks, &dummies
}

func TestBasicAuthTimingAndCache(t *testing.T) {
	a, checks, dummies := baCounted(t)
	h := a.wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	do := func(auth string) int {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	steps := []struct {
		name             string
		auth             string
		code             int
		checks, dummies  int64 // totals after the step
		cachedAfterwards int
	}{
		{"unknown user runs a dummy comparison", baBasic("mallory", "secret"), 401, 0, 1, 0},
		{"first success verifies", baBasic("alice", "secret"), 200, 1, 1, 1},
		{"second success is cached", baBasic("alice", "secret"), 200, 1, 1, 1},
		{"failure verifies", baBasic("alice", "wrong"), 401, 2, 1, 1},
		{"failure is not cached", baBasic("alice", "wrong"), 401, 3, 1, 1},
		{"malformed runs no comparison", "Basic !!", 401, 3, 1, 1},
		{"another user verifies", baBasic("carol", "secret"), 200, 4, 1, 2},
		{"its cache entry is separate", baBasic("carol", "secret"), 200, 4, 1, 2},
	}
	for _, s := range steps {
		if code := do(s.auth); code != s.code {
			t.Errorf("%s: status %d, want %d", s.name, code, s.code)
		}
		if checks.Load() != s.checks || dummies.Load() != s.dummies {
			t.Errorf("%s: %d checks and %d dummy comparisons, want %d and %d", s.name, checks.Load(), dummies.Load(), s.checks, s.dummies)
		}
		if n := len(a.cache.keys); n != s.cachedAfterwards {
			t.Errorf("%s: %d cached, want %d", s.name, n, s.cachedAfterwards)
		}
	}
}

func TestBasicAuthCacheBound(t *testing.T) {
	var c baCache
	c.keys = make(map[[32]byte]struct{})
	for i := range 3 * baCacheSize {
		c.add(c.key([]byte(fmt.Sprintf("u%d:p", i))))
		if len(c.keys) > baCacheSize {
			t.Fatalf("%d keys after %d adds, bound %d", len(c.keys), i+1, baCacheSize)
		}
	}
	last := c.key([]byte(fmt.Sprintf("u%d:p", 3*baCacheSize-1)))
	if !c.has(last) {
		t.Error("the last key added was evicted")
	}
}

func TestBasicAuthTrackUser(t *testing.T) {
	mw, err := Build(&config.Middleware{Name: "ba", Kind: config.MWBasicAuth, BasicAuth: &config.BasicAuth{Users: baUsers}}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := TrackUser(httptest.NewRequest(http.MethodGet, "/", nil))
	if got := User(r); got != "" {
		t.Fatalf("User before the chain = %q", got)
	}
	r.Header.Set("Authorization", baBasic("bob", "hunter2"))
	h.ServeHTTP(httptest.NewRecorder(), r)
	if got := User(r); got != "bob" {
		t.Errorf("User after the chain = %q, want bob", got)
	}
	if got := User(httptest.NewRequest(http.MethodGet, "/", nil)); got != "" {
		t.Errorf("User of an unauthenticated request = %q", got)
	}
}

func FuzzBasicAuthHeader(f *testing.F) {
	for _, s := range []string{
		baBasic("alice", "secret"), baBasic("alice", "x"), "Basic", "Basic ", "basic YWxpY2U=",
		"Basic YWxpY2U6", "Basic ===", "Bearer x", "Basic " + strings.Repeat("QUFB", 100),
	} {
		f.Add(s)
	}
	a, err := buildBasicAuth(&config.BasicAuth{Users: []string{"alice:" + baAliceBcrypt}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, auth string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["Authorization"] = []string{auth}
		u := a.authenticate(r)
		if u == nil {
			return
		}
		want, _ := base64.StdEncoding.DecodeString(strings.TrimLeft(auth[6:], " "))
		if u.name != "alice" || !strings.HasPrefix(string(want), "alice:") {
			t.Fatalf("%q authenticated as %q", auth, u.name)
		}
	})
}

// baNopWriter is a ResponseWriter that allocates nothing.
type baNopWriter struct{ h http.Header }

func (w *baNopWriter) Header() http.Header         { return w.h }
func (w *baNopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *baNopWriter) WriteHeader(int)             {}

// BenchmarkBasicAuthCached is basic_auth with a cached verification of a
// cost-10 bcrypt hash, as in the five-middleware chain.
func BenchmarkBasicAuthCached(b *testing.B) {
	mw, err := Build(&config.Middleware{Name: "ba", Kind: config.MWBasicAuth, BasicAuth: &config.BasicAuth{
		Users: []string{"alice:" + baBcryptCost10}, StripHeader: true, HeaderField: "X-User",
	}}, Env{})
	if err != nil {
		b.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	auth := []string{baBasic("alice", "secret")}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	w := &baNopWriter{h: http.Header{}}
	r.Header["Authorization"] = auth
	h.ServeHTTP(w, r) // fills the cache
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r.Header["Authorization"] = auth
		h.ServeHTTP(w, r)
	}
}

// BenchmarkBasicAuthUncached is the cost of a verification the cache
// cannot answer (a cost-10 bcrypt comparison): what a cache miss or a
// wrong password costs.
func BenchmarkBasicAuthUncached(b *testing.B) {
	a, err := buildBasicAuth(&config.BasicAuth{Users: []string{"alice:" + baBcryptCost10}})
	if err != nil {
		b.Fatal(err)
	}
	h := a.wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	auth := []string{baBasic("alice", "wrong")}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	w := &baNopWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		r.Header["Authorization"] = auth
		h.ServeHTTP(w, r)
	}
}

// BenchmarkBasicAuthCachedTracked is BenchmarkBasicAuthCached below an
// access log that called TrackUser: the user is recorded in place.
func BenchmarkBasicAuthCachedTracked(b *testing.B) {
	mw, err := Build(&config.Middleware{Name: "ba", Kind: config.MWBasicAuth, BasicAuth: &config.BasicAuth{
		Users: []string{"alice:" + baBcryptCost10}, StripHeader: true, HeaderField: "X-User",
	}}, Env{})
	if err != nil {
		b.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	auth := []string{baBasic("alice", "secret")}
	r := TrackUser(httptest.NewRequest(http.MethodGet, "/", nil))
	w := &baNopWriter{h: http.Header{}}
	r.Header["Authorization"] = auth
	h.ServeHTTP(w, r)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r.Header["Authorization"] = auth
		h.ServeHTTP(w, r)
	}
	if User(r) != "alice" {
		b.Fatal("user not recorded")
	}
}
