package middleware

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/go-crypt/crypt/algorithm/shacrypt"
	"golang.org/x/crypto/bcrypt"

	"github.com/proxynow/proxynow/config"
)

// basic_auth checks RFC 7617 credentials against htpasswd lines: bcrypt
// ($2a$, $2b$, $2y$, via golang.org/x/crypto/bcrypt) or SHA-256 crypt ($5$,
// rounds= honoured, 5000 when omitted, via github.com/go-crypt/crypt, the
// maintained library behind Authelia). The lines are parsed once, at load.
//
// Timing: a request naming an unknown user still runs a full hash
// comparison, against the first user's hash, and is refused whatever it
// yields, so the time of a refusal does not tell which names exist (users
// whose hashes differ in cost or kind can still be told apart from each
// other). Hash comparisons are constant-time in both libraries.
//
// A bcrypt comparison costs tens of milliseconds (about 50 ms at cost 10),
// too much per request of a browser that resends its credentials every
// time. Successful verifications are therefore cached: the key is
// SHA-256(secret || user ":" password), the secret being random per
// middleware instance so the cache holds nothing that an offline search of
// SHA-256 could test passwords against without it. The cache holds at most
// baCacheSize keys and drops an arbitrary one when full. Failures are never
// cached: caching them would let anyone fill the bounded cache with wrong
// guesses and evict the users' entries, and repeating a wrong password is
// not a path worth speeding up (bound guessing with rate_limit). A reload
// builds a new instance, so a changed or removed password is never served
// from the old cache.
//
// A refused request gets 401 with `WWW-Authenticate: Basic realm="<realm>",
// charset="UTF-8"` (RFC 7617 §2.1); a malformed Authorization (another
// scheme, bad base64, no colon, several header lines) is refused alike,
// without a hash comparison. On success the user name is recorded for
// User, Authorization is removed when StripHeader is set, and HeaderField,
// when set, replaces whatever the client sent under that name.

// baCacheSize bounds the cache of successful verifications.
const baCacheSize = 1024

// baMaxCredentials bounds the base64 credentials decoded; longer ones are
// malformed. htpasswd user names and bcrypt passwords (72 bytes) are far
// shorter.
const baMaxCredentials = 4096

type baUser struct {
	name string
	// field is []string{name} with its capacity cut to 1, shared by every
	// request as the HeaderField value: net/http and httputil only replace
	// or append header values, and an append copies.
	field []string
	check func(password []byte) bool
}

type basicAuth struct {
	users     map[string]*baUser
	dummy     func(password []byte) bool
	challenge []string // the WWW-Authenticate value, shared like baUser.field
	strip     bool
	field     string // canonical HeaderField, "" for none
	cache     baCache
}

func newBasicAuth(m *config.Middleware, _ Env) (Middleware, error) {
	a, err := buildBasicAuth(m.BasicAuth)
	if err != nil {
		return nil, fmt.Errorf("basic_auth: %w", err)
	}
	return a.wrap, nil
}

func buildBasicAuth(c *config.BasicAuth) (*basicAuth, error) {
	if c == nil {
		return nil, errors.New("missing block")
	}
	if len(c.Users) == 0 {
		return nil, errors.New("no users")
	}
	realm := c.Realm
	if realm == "" {
		realm = config.DefaultBasicAuthRealm
	}
	if strings.ContainsFunc(realm, func(r rune) bool { return r == '"' || r == '\\' || r < 0x20 || r == 0x7f }) {
		return nil, fmt.Errorf("realm %q holds a quote, backslash or control character", realm)
	}
	a := &basicAuth{
		users:     make(map[string]*baUser, len(c.Users)),
		challenge: []string{`Basic realm="` + realm + `", charset="UTF-8"`}[:1:1],
		strip:     c.StripHeader,
	}
	if c.HeaderField != "" {
		a.field = http.CanonicalHeaderKey(c.HeaderField)
	}
	if _, err := rand.Read(a.cache.secret[:]); err != nil {
		return nil, fmt.Errorf("cache secret: %w", err)
	}
	a.cache.keys = make(map[[sha256.Size]byte]struct{})
	for i, line := range c.Users {
		name, hash, ok := strings.Cut(line, ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("users[%d]: not a \"user:hash\" line", i)
		}
		if _, dup := a.users[name]; dup {
			return nil, fmt.Errorf("users[%d]: user %q is listed twice", i, name)
		}
		check, err := baVerifier(hash)
		if err != nil {
			// Never quote the hash: it may be a plain-text password.
			return nil, fmt.Errorf("users[%d]: user %q: %w", i, name, err)
		}
		a.users[name] = &baUser{name: name, field: []string{name}[:1:1], check: check}
		if a.dummy == nil {
			a.dummy = check
		}
	}
	return a, nil
}

// baVerifier returns the comparison of a password against one hash.
func baVerifier(hash string) (func([]byte) bool, error) {
	switch {
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		h := []byte(hash)
		if _, err := bcrypt.Cost(h); err != nil {
			return nil, fmt.Errorf("the bcrypt hash does not parse: %w", err)
		}
		return func(pw []byte) bool { return bcrypt.CompareHashAndPassword(h, pw) == nil }, nil
	case strings.HasPrefix(hash, "$5$"):
		d, err := shacrypt.DecodeVariant(shacrypt.VariantSHA256)(hash)
		if err != nil {
			return nil, fmt.Errorf("the SHA-256 crypt hash does not parse: %w", err)
		}
		return d.MatchBytes, nil
	}
	return nil, errors.New("only bcrypt and SHA-256 crypt hashes are accepted")
}

func (a *basicAuth) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := a.authenticate(r)
		if u == nil {
			w.Header()["Www-Authenticate"] = a.challenge
			http.Error(w, "401 Unauthorized", http.StatusUnauthorized)
			return
		}
		if a.strip {
			delete(r.Header, "Authorization")
		}
		if a.field != "" {
			r.Header[a.field] = u.field
		}
		next.ServeHTTP(w, withUser(r, u.name))
	})
}

// authenticate returns the user whose credentials r carries, or nil.
func (a *basicAuth) authenticate(r *http.Request) *baUser {
	var buf [256]byte
	cred, ok := baDecode(r.Header["Authorization"], buf[:])
	if !ok {
		return nil
	}
	name, password, ok := baSplit(cred)
	if !ok {
		return nil
	}
	u := a.users[string(name)]
	if u == nil {
		a.dummy(bytes.Clone(password))
		return nil
	}
	key := a.cache.key(cred)
	if a.cache.has(key) {
		return u
	}
	// The verifiers are func values: what they get escapes, so buf would be
	// on the heap for every request, cached ones included, without a copy.
	if !u.check(bytes.Clone(password)) {
		return nil
	}
	a.cache.add(key)
	return u
}

// baDecode returns the decoded token68 of a single `Basic` Authorization
// line, in buf when it fits. The scheme is case-insensitive and may be
// followed by several spaces (RFC 9110 §11.4).
func baDecode(lines []string, buf []byte) ([]byte, bool) {
	if len(lines) != 1 {
		return nil, false
	}
	h := lines[0]
	if len(h) < 6 || !strings.EqualFold(h[:6], "Basic ") {
		return nil, false
	}
	tok := strings.TrimLeft(h[6:], " ")
	if tok == "" || len(tok) > baMaxCredentials {
		return nil, false
	}
	if n := base64.StdEncoding.DecodedLen(len(tok)); n > len(buf) {
		buf = make([]byte, n)
	}
	n, err := base64.StdEncoding.Decode(buf, []byte(tok))
	if err != nil {
		return nil, false
	}
	return buf[:n], true
}

// baSplit cuts "user:password" at its first colon (RFC 7617 §2: a user-id
// holds no colon).
func baSplit(cred []byte) (name, password []byte, ok bool) {
	for i, c := range cred {
		if c == ':' {
			return cred[:i], cred[i+1:], true
		}
	}
	return nil, nil, false
}

// baCache is the bounded set of successful verifications.
type baCache struct {
	secret [32]byte
	mu     sync.RWMutex
	keys   map[[sha256.Size]byte]struct{}
}

func (c *baCache) key(cred []byte) [sha256.Size]byte {
	var buf [len(c.secret) + 256]byte
	b := append(buf[:0], c.secret[:]...)
	return sha256.Sum256(append(b, cred...))
}

func (c *baCache) has(k [sha256.Size]byte) bool {
	c.mu.RLock()
	_, ok := c.keys[k]
	c.mu.RUnlock()
	return ok
}

func (c *baCache) add(k [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.keys) >= baCacheSize {
		for old := range c.keys { // map order is unspecified: an arbitrary victim
			delete(c.keys, old)
			break
		}
	}
	c.keys[k] = struct{}{}
}

// userKey is the context key of the authenticated user's slot.
type userKey struct{}

// UserKey is the context key under which basic_auth looks up a UserSlot to
// record the user it authenticated in. A caller that already puts a value
// of its own in the request's context (l7's request info) can answer this
// key too, and spare TrackUser's copy of the request.
func UserKey() any { return userKey{} }

// UserSlot records the user basic_auth authenticated for a request.
type UserSlot interface {
	SetUser(name string)
	User() string
}

func (c *userCtx) SetUser(name string) { c.name = name }
func (c *userCtx) User() string        { return c.name }

// userCtx is a context carrying the user slot: one allocation, where
// context.WithValue and a separate slot would take two. It is written and
// read by the goroutine serving the request, before and after the chain.
type userCtx struct {
	context.Context
	name string
}

func (c *userCtx) Value(k any) any {
	if k == (userKey{}) {
		return c
	}
	return c.Context.Value(k)
}

// TrackUser returns r with an empty user slot in its context. A caller that
// keeps the returned request and reads User from it after the chain ran
// (the access log) sees the user a basic_auth middleware down the chain
// authenticated, which it could not through the derived request the chain
// passes on.
func TrackUser(r *http.Request) *http.Request {
	return r.WithContext(&userCtx{Context: r.Context()})
}

// User returns the user name basic_auth authenticated for r, or "".
func User(r *http.Request) string {
	if s, ok := r.Context().Value(userKey{}).(UserSlot); ok {
		return s.User()
	}
	return ""
}

// withUser records name in r's slot, adding one when TrackUser did not.
func withUser(r *http.Request, name string) *http.Request {
	if s, ok := r.Context().Value(userKey{}).(UserSlot); ok {
		s.SetUser(name)
		return r
	}
	return r.WithContext(&userCtx{Context: r.Context(), name: name})
}
