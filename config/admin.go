package config

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// DefaultAdminAddress is where the admin endpoint listens when the admin
// block names no address: loopback only.
const DefaultAdminAddress = "127.0.0.1:9901"

// Admin is the `admin` block: the endpoint serving /metrics, /healthz,
// /readyz, /config, /upstreams, POST /reload and, with Pprof,
// /debug/pprof/. Without the block there is no admin endpoint.
type Admin struct {
	// Address is host:port; default DefaultAdminAddress. An address that
	// is not loopback (a wildcard, a non-loopback IP or a host name other
	// than localhost) needs AllowRemote.
	Address string `json:"address"`
	// AllowRemote permits a non-loopback Address; it requires BasicAuth.
	AllowRemote bool `json:"allow_remote"`
	// Pprof serves net/http/pprof under /debug/pprof/. Default false.
	Pprof bool `json:"pprof"`
	// BasicAuth, when set, protects every path of the endpoint. Users holds
	// validated "user:hash" lines (bcrypt or SHA-256 crypt), as for the
	// basic_auth middleware.
	BasicAuth *AdminAuth `json:"basic_auth,omitempty"`
	Pos       Pos        `json:"-"`
}

// AdminAuth is the admin block's `basic_auth` block.
type AdminAuth struct {
	Users []string `json:"users"`
	Realm string   `json:"realm"` // default "proxynow admin"
}

// AccessLog is the `access` block of the log block.
type AccessLog struct {
	// Format is "json" (default), "common" or "combined".
	Format string `json:"format"`
	// Path is the file lines are appended to; "-" or "stdout" (default)
	// is the standard output. A relative path is resolved against the
	// config file's directory.
	Path string `json:"path"`
	// Buffer is how many lines may wait for a slow sink; beyond it lines
	// are dropped (and counted), never delaying traffic. Default 8192.
	Buffer int `json:"buffer"`
}

// DefaultAccessLogBuffer is the default of AccessLog.Buffer.
const DefaultAccessLogBuffer = 8192

// maxAccessLogBuffer bounds AccessLog.Buffer (lines of ~300 bytes).
const maxAccessLogBuffer = 1 << 20

var accessFormats = []string{"json", "common", "combined"}

type adminDecl struct {
	Admin
	w      where
	authAt Pos
}

func (d *decoder) adminBlock(b *hclsyntax.Block) {
	a := &adminDecl{Admin: Admin{Pos: posOf(b.TypeRange)}, w: newWhere()}
	s := d.scope("admin", b.Body, a.w, "")
	s.check(schema{attrs: []string{"address", "allow_remote", "pprof"}, blocks: []string{"basic_auth"}})
	s.str("address", &a.Address)
	s.boolean("allow_remote", &a.AllowRemote)
	s.boolean("pprof", &a.Pprof)
	for _, nb := range s.nested("basic_auth") {
		a.authAt = posOf(nb.TypeRange)
		a.BasicAuth = &AdminAuth{}
		ns := d.scope("admin: basic_auth", nb.Body, a.w, "basic_auth.")
		ns.check(schema{attrs: []string{"users", "realm"}, later: []string{"users_file"}})
		a.BasicAuth.Users = ns.strList("users")
		ns.str("realm", &a.BasicAuth.Realm)
	}
	d.out.admin = a
}

// accessBlock decodes log { access { ... } }.
func (d *decoder) accessBlock(s *scope) {
	for _, nb := range s.nested("access") {
		al := &AccessLog{}
		d.out.log.Access = al
		d.out.accessAt = posOf(nb.TypeRange)
		ns := d.scope("log: access", nb.Body, d.out.lw, "access.")
		ns.check(schema{attrs: []string{"format", "path", "buffer"}})
		ns.str("format", &al.Format)
		ns.integer("buffer", &al.Buffer)
		if ns.str("path", &al.Path) && al.Path != "-" && al.Path != "stdout" && al.Path != "" {
			al.Path = d.path(al.Path)
		}
	}
}

func applyAdminDefaults(c *decls) {
	if a := c.admin; a != nil {
		if !a.w.has("address") {
			a.Address = DefaultAdminAddress
		}
		if a.BasicAuth != nil && !a.w.has("basic_auth.realm") {
			a.BasicAuth.Realm = "proxynow admin"
		}
	}
	if al := c.log.Access; al != nil {
		if !c.lw.has("access.format") {
			al.Format = "json"
		}
		if !c.lw.has("access.path") {
			al.Path = "-"
		}
		if !c.lw.has("access.buffer") {
			al.Buffer = DefaultAccessLogBuffer
		}
	}
}

// admin checks the admin block: a non-loopback address only with
// allow_remote, and allow_remote only with basic_auth.
func (v *validator) admin() {
	if al := v.c.log.Access; al != nil {
		if v.c.lw.ok("access.format") && !slices.Contains(accessFormats, al.Format) {
			v.errf(v.c.lw.pos["access.format"], "log: access: unknown format %q%s", al.Format, oneOf(al.Format, accessFormats))
		}
		if v.c.lw.ok("access.buffer") && (al.Buffer < 1 || al.Buffer > maxAccessLogBuffer) {
			v.errf(v.c.lw.pos["access.buffer"], "log: access: buffer %d is out of range 1..%d (lines)", al.Buffer, maxAccessLogBuffer)
		}
		if v.c.lw.ok("access.path") && al.Path == "" {
			v.errf(v.c.lw.pos["access.path"], "log: access: path must not be empty; name a file, or \"-\" for standard output")
		}
	}
	a := v.c.admin
	if a == nil {
		return
	}
	if a.w.ok("address") || !a.w.has("address") {
		hp, err := parseAddress(a.Address)
		switch {
		case err != nil:
			v.errf(a.w.at("address", a.Pos), "admin: address %q: %v", a.Address, err)
		case !isLoopback(hp.host):
			if !a.AllowRemote {
				v.errf(a.w.at("address", a.Pos), "admin: address %q is reachable from other hosts; use a loopback address such as %q, or set allow_remote = true with a basic_auth block", a.Address, DefaultAdminAddress)
			}
		}
		if err == nil {
			v.adminClash(a, hp)
		}
	}
	if a.AllowRemote && a.BasicAuth == nil {
		v.errf(a.w.at("allow_remote", a.Pos), "admin: allow_remote = true requires a basic_auth { users = [\"USER:HASH\"] } block")
	}
	if ba := a.BasicAuth; ba != nil {
		if !a.w.has("basic_auth.users") {
			v.errf(a.authAt, "admin: basic_auth: add users = [\"USER:HASH\"], with lines made by htpasswd -nB USER")
		} else if a.w.ok("basic_auth.users") {
			if len(ba.Users) == 0 {
				v.errf(a.w.pos["basic_auth.users"], "admin: basic_auth: users must not be empty; list \"USER:HASH\" lines made by htpasswd -nB USER")
			}
			var users []string
			eachAt(a.w, "basic_auth.users", ba.Users, func(i int, e string, at Pos) {
				u, err := htpasswdEntry(e)
				switch {
				case err != nil:
					v.errf(at, "admin: basic_auth: users[%d]: %v", i, err)
				case slices.Contains(users, u):
					v.errf(at, "admin: basic_auth: users[%d]: user %q is listed twice", i, u)
				}
				users = append(users, u)
			})
		}
		if a.w.ok("basic_auth.realm") && (ba.Realm == "" || strings.ContainsFunc(ba.Realm, func(r rune) bool { return r == '"' || r == '\\' || r < 0x20 || r == 0x7f })) {
			v.errf(a.w.pos["basic_auth.realm"], "admin: basic_auth: realm %q must not be empty nor hold a quote, backslash or control character", ba.Realm)
		}
	}
}

// adminClash refuses an admin address whose TCP socket an entrypoint
// binds too (same port, and the same host or a wildcard on either side):
// one of them would fail to bind at start.
func (v *validator) adminClash(a *adminDecl, hp hostPort) {
	if hp.port == 0 {
		return
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	for _, e := range v.c.entrypoints {
		if e.Network != NetworkTCP || !e.w.ok("address") {
			continue
		}
		ep, err := parseAddress(e.Address)
		if err != nil || ep.port != hp.port || !(ep.host == hp.host || wild(ep.host) || wild(hp.host)) {
			continue
		}
		v.errf(a.w.at("address", a.Pos), "admin: address %q takes the port of entrypoint %q (%s); use another port",
			a.Address, e.Name, e.w.at("address", e.Pos))
		return
	}
}

// isLoopback reports a host that only this machine reaches: a loopback IP
// or "localhost". The empty host (all interfaces) is not.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

func buildAdmin(c *decls) *Admin {
	if c.admin == nil {
		return nil
	}
	a := c.admin.Admin
	if a.BasicAuth != nil {
		ba := *a.BasicAuth
		ba.Users = slices.Clone(ba.Users)
		a.BasicAuth = &ba
	}
	return &a
}
