package middleware

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/proxynow/proxynow/config"
)

// strip_prefix, add_prefix, replace_path and replace_path_regex rewrite the
// request's path before the next handler.
//
// The caller's request is never changed: the next handler gets a shallow
// copy with its own URL and Header, so an outer middleware (the access
// log) still sees the path the client sent. RequestURI follows the
// rewrite, as in Traefik.
//
// Paths are kept in both forms net/url holds: Path (decoded, what the
// router matched) and RawPath (the escaped form when it is not the
// default encoding, e.g. "%2F" inside a segment). Configured paths are
// written escaped ("/a%20b"), like the paths of requests.
//
//   - strip_prefix removes the first listed prefix that matches on a
//     segment boundary: "/api" strips "/api" and "/api/x", not "/apix".
//     It matches the decoded path, as the router does: "/api%2Fx" is
//     "/api/x" to a path_prefix "/api", so strip_prefix strips it too, and
//     the escaped "/" at the boundary becomes the new path's leading "/"
//     ("/x"; a request target starts with one). The rest keeps its
//     escapes: "/api/a%2Fb" and "/api%2Fa%2Fb" become "/a%2Fb", as with
//     Caddy's strip_path_prefix. An emptied path becomes "/".
//     X-Forwarded-Prefix is set to the prefix.
//   - add_prefix prepends its prefix.
//   - replace_path sets the path; X-Replaced-Path holds the original
//     (escaped).
//   - replace_path_regex rewrites the escaped path with the regex
//     (Regexp.ReplaceAllString, $1 in Replacement) when it matches;
//     X-Replaced-Path holds the original.

// escPath holds a configured path in both forms.
type escPath struct {
	path string // decoded
	raw  string // escaped, "" when it is the default encoding of path
}

func parseEscPath(s string) (escPath, error) {
	p, err := url.PathUnescape(s)
	if err != nil {
		return escPath{}, err
	}
	e := escPath{path: p}
	if (&url.URL{Path: p}).EscapedPath() != s {
		e.raw = s
	}
	return e, nil
}

// escaped is the escaped form.
func (e escPath) escaped() string {
	if e.raw != "" {
		return e.raw
	}
	return (&url.URL{Path: e.path}).EscapedPath()
}

// validRaw is u.RawPath when it is a valid encoding of u.Path, else "".
func validRaw(u *url.URL) string {
	if u.RawPath == "" || u.EscapedPath() != u.RawPath {
		return ""
	}
	return u.RawPath
}

// rewrite is a copy of r with path and raw as its path and key set to val
// (key "" sets no header).
func rewrite(r *http.Request, path, raw, key string, val []string) *http.Request {
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	u.Path, u.RawPath = path, raw
	r2.URL = &u
	if key != "" {
		r2.Header = r.Header.Clone()
		if r2.Header == nil {
			r2.Header = make(http.Header, 1)
		}
		r2.Header[key] = val
	}
	if r.RequestURI != "" {
		r2.RequestURI = u.RequestURI()
	}
	return r2
}

type stripPrefix struct {
	prefixes []string   // decoded, no trailing "/"
	hdr      [][]string // X-Forwarded-Prefix per prefix, shared
}

func newStripPrefix(m *config.Middleware, _ Env) (Middleware, error) {
	c := m.StripPrefix
	if c == nil {
		return nil, errors.New("strip_prefix: missing block")
	}
	if len(c.Prefixes) == 0 {
		return nil, errors.New("strip_prefix: no prefixes")
	}
	sp := &stripPrefix{}
	for i, p := range c.Prefixes {
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("strip_prefix: prefixes[%d] %q does not start with \"/\"", i, p)
		}
		e, err := parseEscPath(strings.TrimRight(p, "/"))
		if err != nil {
			return nil, fmt.Errorf("strip_prefix: prefixes[%d] %q: %w", i, p, err)
		}
		sp.prefixes = append(sp.prefixes, e.path)
		sp.hdr = append(sp.hdr, hdValue(e.escaped()))
	}
	return sp.wrap, nil
}

// strip returns the path and raw path without the first matching prefix,
// and the prefix's index; -1 when none matches.
func (sp *stripPrefix) strip(u *url.URL) (path, raw string, i int) {
	for i, p := range sp.prefixes {
		path := u.Path
		if !strings.HasPrefix(path, p) || len(path) > len(p) && path[len(p)] != '/' {
			continue
		}
		path = path[len(p):]
		raw := validRaw(u)
		if raw != "" {
			// The raw prefix spans as many bytes as decode to p.
			k, n := 0, 0
			for ; n < len(p) && k < len(raw); n++ {
				if raw[k] == '%' {
					k += 3
				} else {
					k++
				}
			}
			switch {
			case n < len(p):
				continue // cannot be: raw decodes to path
			case k < len(raw) && raw[k] != '/':
				// The boundary is an escaped "/" (path[len(p)] is '/'
				// and raw[k] is not, so raw[k:k+3] is "%2F" or "%2f"):
				// it is the new path's leading "/".
				raw = "/" + raw[k+3:]
			default:
				raw = raw[k:]
			}
		}
		if path == "" {
			path, raw = "/", ""
		}
		return path, raw, i
	}
	return "", "", -1
}

func (sp *stripPrefix) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path, raw, i := sp.strip(r.URL)
		if i < 0 {
			next.ServeHTTP(w, r)
			return
		}
		key := "X-Forwarded-Prefix"
		if sp.prefixes[i] == "" {
			key = "" // "/" strips nothing
		}
		next.ServeHTTP(w, rewrite(r, path, raw, key, sp.hdr[i]))
	})
}

func newAddPrefix(m *config.Middleware, _ Env) (Middleware, error) {
	c := m.AddPrefix
	if c == nil {
		return nil, errors.New("add_prefix: missing block")
	}
	if !strings.HasPrefix(c.Prefix, "/") {
		return nil, fmt.Errorf("add_prefix: prefix %q does not start with \"/\"", c.Prefix)
	}
	pre, err := parseEscPath(strings.TrimRight(c.Prefix, "/"))
	if err != nil {
		return nil, fmt.Errorf("add_prefix: prefix %q: %w", c.Prefix, err)
	}
	escPre := pre.escaped()
	return func(next http.Handler) http.Handler {
		if pre.path == "" {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			path := r.URL.Path
			if !strings.HasPrefix(path, "/") {
				path = "/" + path
			}
			raw := validRaw(r.URL)
			if raw != "" || pre.raw != "" {
				raw = escPre + r.URL.EscapedPath()
			}
			next.ServeHTTP(w, rewrite(r, pre.path+path, raw, "", nil))
		})
	}, nil
}

func newReplacePath(m *config.Middleware, _ Env) (Middleware, error) {
	c := m.ReplacePath
	if c == nil {
		return nil, errors.New("replace_path: missing block")
	}
	if !strings.HasPrefix(c.Path, "/") {
		return nil, fmt.Errorf("replace_path: path %q does not start with \"/\"", c.Path)
	}
	p, err := parseEscPath(c.Path)
	if err != nil {
		return nil, fmt.Errorf("replace_path: path %q: %w", c.Path, err)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, rewrite(r, p.path, p.raw, "X-Replaced-Path", []string{r.URL.EscapedPath()}))
		})
	}, nil
}

func newReplacePathRegex(m *config.Middleware, _ Env) (Middleware, error) {
	c := m.ReplacePathRegex
	if c == nil {
		return nil, errors.New("replace_path_regex: missing block")
	}
	re, err := regexp.Compile(c.Regex)
	if err != nil {
		return nil, fmt.Errorf("replace_path_regex: regex: %w", err)
	}
	if c.Replacement == "" {
		return nil, errors.New("replace_path_regex: replacement is empty")
	}
	repl := c.Replacement
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			orig := r.URL.EscapedPath()
			if !re.MatchString(orig) {
				next.ServeHTTP(w, r)
				return
			}
			s := re.ReplaceAllString(orig, repl)
			if !strings.HasPrefix(s, "/") {
				s = "/" + s
			}
			p, err := parseEscPath(s)
			if err != nil {
				// The replacement made a bad escape ("%zz"): keep the
				// bytes literally rather than fail the request.
				p = escPath{path: s}
			}
			next.ServeHTTP(w, rewrite(r, p.path, p.raw, "X-Replaced-Path", []string{orig}))
		})
	}, nil
}
