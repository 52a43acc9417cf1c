package server

import (
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/proxynow/proxynow/config"
)

// redacted replaces a secret in /config.
const redacted = "<redacted>"

// redactConfig copies cfg for /config with every secret it may hold
// replaced, field by field (the Config is immutable, so what is changed is
// copied first):
//
//   - basic_auth users (of middlewares and of the admin block): the hash
//     goes, the user name stays;
//   - forward_auth addresses: a password in the URL;
//   - request header values that headers middlewares set or add toward
//     backends (credentials are typically injected there, often from env());
//   - the values of route header and query matchers whose name looks like a
//     credential (authorization, cookie, token, key, secret, password,
//     session, signature).
//
// Key files are paths in the config, never contents; response header
// values are sent to every client, so they are not secret.
func redactConfig(cfg *config.Config) *config.Config {
	c := *cfg
	if a := c.Admin; a != nil && a.BasicAuth != nil {
		ac := *a
		ba := *a.BasicAuth
		ba.Users = redactUsers(ba.Users)
		ac.BasicAuth = &ba
		c.Admin = &ac
	}
	c.Middlewares = slices.Clone(cfg.Middlewares)
	for i := range c.Middlewares {
		m := &c.Middlewares[i]
		if m.BasicAuth != nil {
			ba := *m.BasicAuth
			ba.Users = redactUsers(ba.Users)
			m.BasicAuth = &ba
		}
		if m.ForwardAuth != nil {
			fa := *m.ForwardAuth
			if u, err := url.Parse(fa.Address); err == nil {
				fa.Address = u.Redacted()
			} else {
				fa.Address = redacted
			}
			m.ForwardAuth = &fa
		}
		if m.Headers != nil {
			h := *m.Headers
			h.Request.Set = redactValues(h.Request.Set, func(string) bool { return true })
			h.Request.Add = redactValues(h.Request.Add, func(string) bool { return true })
			m.Headers = &h
		}
	}
	c.HTTPRoutes = slices.Clone(cfg.HTTPRoutes)
	for i := range c.HTTPRoutes {
		r := &c.HTTPRoutes[i]
		r.Headers = redactValues(r.Headers, secretName)
		r.Query = redactValues(r.Query, secretName)
	}
	return &c
}

func redactUsers(users []string) []string {
	out := make([]string, len(users))
	for i, u := range users {
		name, _, _ := strings.Cut(u, ":")
		out[i] = name + ":" + redacted
	}
	return out
}

func redactValues(m map[string]string, secret func(string) bool) map[string]string {
	if m == nil {
		return nil
	}
	out := maps.Clone(m)
	for k := range out {
		if secret(k) {
			out[k] = redacted
		}
	}
	return out
}

// secretName reports a header or parameter name that usually carries a
// credential.
func secretName(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"auth", "cookie", "token", "key", "secret", "pass", "session", "signature", "credential"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}
