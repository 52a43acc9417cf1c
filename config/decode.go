package config

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Top-level block types.
var (
	topBlocks = []string{"global", "log", "admin", "entrypoint", "tls", "tcp_route", "udp_route", "quic_route", "http_route", "middleware", "service"}
	// laterTop are blocks of the design that later releases implement; they
	// are refused, never silently ignored. Every block of the design is
	// implemented now; the mechanism stays for the next one.
	laterTop []string
)

// where records, per attribute key ("address", "timeouts.idle",
// "entrypoints.1"), the position of its expression and whether it decoded.
// Validation uses it to point at the offending value and to skip values
// that already failed to decode, so one mistake yields one message.
type where struct {
	pos map[string]Pos
	bad map[string]bool
}

func newWhere() where { return where{pos: map[string]Pos{}, bad: map[string]bool{}} }

func (w where) has(k string) bool { _, ok := w.pos[k]; return ok }
func (w where) ok(k string) bool  { return w.has(k) && !w.bad[k] }

// at is the position of k, or def when k was not written.
func (w where) at(k string, def Pos) Pos {
	if p, ok := w.pos[k]; ok {
		return p
	}
	return def
}

// The decoded, not yet validated form of each block.
type (
	decls struct {
		files       []string
		global      Global
		gw          where
		log         Log
		lw          where
		accessAt    Pos
		admin       *adminDecl
		entrypoints []*epDecl
		tls         tlsDecl
		tcpRoutes   []*routeDecl
		udpRoutes   []*routeDecl
		quicRoutes  []*routeDecl
		httpRoutes  []*httpRouteDecl
		middlewares []*mwDecl
		services    []*serviceDecl
	}
	epDecl struct {
		Entrypoint
		w where
	}
	tlsDecl struct {
		MinVersion string
		certs      []*certDecl
		acme       []*acmeDecl
		w          where
	}
	certDecl struct {
		Certificate
		w where
	}
	routeDecl struct {
		Name        string
		Entrypoints []string
		Service     string
		SNI         []string      // tcp and quic only, normalised
		ALPN        []string      // tcp only
		sniAt       []Pos         // position of each SNI entry
		alpnAt      []Pos         // position of each ALPN entry
		TLS         string        // tcp only
		IdleTimeout time.Duration // udp only
		Pos         Pos
		w           where
	}
	serviceDecl struct {
		Service
		backends []*backendDecl
		w        where
	}
	backendDecl struct {
		Backend
		label  string // as written, e.g. "tls://db:5432"
		scheme string // lower case, "" for plain host:port
		w      where
	}
)

type decoder struct {
	src   sources
	out   decls
	diags Diagnostics
	// first definitions, per kind ("entrypoint", "global", ...) and name.
	seen map[string]map[string]Pos
	// scope state for the file being decoded
	ectx scopeCtx
}

func newDecoder(src sources) *decoder {
	return &decoder{
		src:  src,
		out:  decls{gw: newWhere(), lw: newWhere(), tls: tlsDecl{w: newWhere()}},
		seen: map[string]map[string]Pos{},
	}
}

func (d *decoder) errf(p Pos, format string, args ...any) {
	d.diags = append(d.diags, Diagnostic{Severity: SeverityError, Pos: p, Message: fmt.Sprintf(format, args...)})
}

// first registers kind+name at p and reports a duplicate; it returns false
// for a duplicate, which the caller then drops.
func (d *decoder) first(kind, name string, p Pos, what string) bool {
	m := d.seen[kind]
	if m == nil {
		m = map[string]Pos{}
		d.seen[kind] = m
	}
	if prev, ok := m[name]; ok {
		d.errf(p, "duplicate %s; first defined at %s", what, prev)
		return false
	}
	m[name] = p
	return true
}

// file decodes one parsed file into d.out.
func (d *decoder) file(name string, body *hclsyntax.Body) {
	d.beginFile(name)
	d.body(body)
}

// beginFile starts decoding the file name: body, once or piece by piece,
// decodes its contents.
func (d *decoder) beginFile(name string) {
	d.out.files = append(d.out.files, name)
	d.ectx = scopeCtx{eval: d.src.evalContext(filepath.Dir(name)), dir: filepath.Dir(name)}
}

// body decodes the top level of the file begun, or of a piece of it.
func (d *decoder) body(body *hclsyntax.Body) {
	for _, a := range attrsInOrder(body) {
		d.errf(posOf(a.NameRange), "unsupported attribute %q at top level; settings go inside a block such as global { ... }", a.Name)
	}
	for _, b := range body.Blocks {
		switch {
		case b.Type == "global":
			if d.labels(b, "", 0) && d.first("global", "", posOf(b.TypeRange), "global block") {
				d.global(b)
			}
		case b.Type == "log":
			if d.labels(b, "", 0) && d.first("log", "", posOf(b.TypeRange), "log block") {
				d.logBlock(b)
			}
		case b.Type == "admin":
			if d.labels(b, "", 0) && d.first("admin", "", posOf(b.TypeRange), "admin block") {
				d.adminBlock(b)
			}
		case b.Type == "entrypoint":
			d.entrypoint(b)
		case b.Type == "tls":
			if d.labels(b, "", 0) && d.first("tls", "", posOf(b.TypeRange), "tls block") {
				d.tlsBlock(b)
			}
		case b.Type == "tcp_route" || b.Type == "udp_route":
			d.route(b)
		case b.Type == "http_route":
			d.httpRoute(b)
		case b.Type == "quic_route":
			d.quicRoute(b)
		case b.Type == "middleware":
			d.middleware(b)
		case b.Type == "service":
			d.service(b)
		case slices.Contains(laterTop, b.Type):
			d.errf(posOf(b.TypeRange), "block %q is not supported yet", b.Type)
		default:
			d.errf(posOf(b.TypeRange), "unsupported block %q%s", b.Type, oneOf(b.Type, topBlocks))
		}
	}
}

// labels checks that b has exactly n labels; ctx prefixes messages.
func (d *decoder) labels(b *hclsyntax.Block, ctx string, n int) bool {
	switch {
	case len(b.Labels) < n:
		d.errf(posOf(b.TypeRange), "%s%s block needs a name: %s \"NAME\" { ... }", prefix(ctx), b.Type, b.Type)
		return false
	case len(b.Labels) > n:
		if n == 0 {
			d.errf(posOf(b.LabelRanges[n]), "%s%s block takes no label; remove %q", prefix(ctx), b.Type, b.Labels[n])
		} else {
			d.errf(posOf(b.LabelRanges[n]), "%s%s block takes one name; remove the extra label %q", prefix(ctx), b.Type, b.Labels[n])
		}
		return false
	case n > 0 && b.Labels[0] == "":
		d.errf(posOf(b.LabelRanges[0]), "%s%s name must not be empty", prefix(ctx), b.Type)
		return false
	}
	return true
}

func prefix(ctx string) string {
	if ctx == "" {
		return ""
	}
	return ctx + ": "
}

// named checks a one-label block and registers its name; ok is false when
// the block is to be dropped.
func (d *decoder) named(b *hclsyntax.Block) (name string, p Pos, ok bool) {
	if !d.labels(b, "", 1) {
		return "", Pos{}, false
	}
	name, p = b.Labels[0], posOf(b.LabelRanges[0])
	return name, p, d.first(b.Type, name, p, fmt.Sprintf("%s %q", b.Type, name))
}

func (d *decoder) global(b *hclsyntax.Block) {
	s := d.scope("global", b.Body, d.out.gw, "")
	s.check(schema{attrs: []string{"grace_period", "watch"}})
	s.duration("grace_period", &d.out.global.GracePeriod)
	s.boolean("watch", &d.out.global.Watch)
}

func (d *decoder) logBlock(b *hclsyntax.Block) {
	s := d.scope("log", b.Body, d.out.lw, "")
	s.check(schema{attrs: []string{"level", "format"}, blocks: []string{"access"}})
	s.str("level", &d.out.log.Level)
	s.str("format", &d.out.log.Format)
	d.accessBlock(s)
}

func (d *decoder) entrypoint(b *hclsyntax.Block) {
	name, p, ok := d.named(b)
	if !ok {
		return
	}
	e := &epDecl{Entrypoint: Entrypoint{Name: name, Pos: p}, w: newWhere()}
	s := d.scope(fmt.Sprintf("entrypoint %q", name), b.Body, e.w, "")
	s.check(schema{
		attrs:  []string{"address", "network", "max_connections", "max_flows", "http3", "http3_advertised_port", "allow_0rtt", "max_header_bytes", "trusted_proxies", "middlewares"},
		blocks: []string{"proxy_protocol", "timeouts", "http2", "quic"},
	})
	s.str("address", &e.Address)
	s.str("network", &e.Network)
	s.integer("max_connections", &e.MaxConnections)
	s.integer("max_flows", &e.MaxFlows)
	d.entrypointHTTP3(e, s)
	for _, nb := range s.nested("proxy_protocol") {
		pp := &ProxyProtocolIn{}
		e.ProxyProtocol = pp
		e.w.pos["proxy_protocol"] = posOf(nb.TypeRange)
		ns := d.scope(s.ctx+": proxy_protocol", nb.Body, e.w, "proxy_protocol.")
		ns.check(schema{attrs: []string{"trusted", "timeout"}})
		pp.Trusted = ns.cidrs("trusted")
		ns.duration("timeout", &pp.Timeout)
	}
	for _, nb := range s.nested("timeouts") {
		ns := d.scope(s.ctx+": timeouts", nb.Body, e.w, "timeouts.")
		ns.check(schema{attrs: []string{"handshake", "read_header", "idle", "write"}})
		ns.duration("handshake", &e.Timeouts.Handshake)
		ns.duration("read_header", &e.Timeouts.ReadHeader)
		ns.duration("idle", &e.Timeouts.Idle)
		ns.duration("write", &e.HTTP.WriteTimeout)
	}
	d.entrypointHTTP(e, s)
	d.out.entrypoints = append(d.out.entrypoints, e)
}

func (d *decoder) route(b *hclsyntax.Block) {
	name, p, ok := d.named(b)
	if !ok {
		return
	}
	r := &routeDecl{Name: name, Pos: p, w: newWhere()}
	s := d.scope(fmt.Sprintf("%s %q", b.Type, name), b.Body, r.w, "")
	if b.Type == "tcp_route" {
		s.check(schema{attrs: []string{"entrypoints", "service", "sni", "alpn", "tls"}})
		if s.str("tls", &r.TLS) && !slices.Contains(tlsModes, r.TLS) {
			d.errf(r.w.at("tls", p), "%s: unknown tls mode %q%s", s.ctx, r.TLS, oneOf(r.TLS, tlsModes))
			s.fail("tls")
		}
		r.SNI, r.sniAt = s.sniList("sni")
		r.ALPN, r.alpnAt = s.alpnList("alpn")
		d.out.tcpRoutes = append(d.out.tcpRoutes, r)
	} else {
		s.check(schema{attrs: []string{"entrypoints", "service", "idle_timeout"}})
		s.duration("idle_timeout", &r.IdleTimeout)
		d.out.udpRoutes = append(d.out.udpRoutes, r)
	}
	r.Entrypoints = s.strList("entrypoints")
	s.str("service", &r.Service)
}

func (d *decoder) service(b *hclsyntax.Block) {
	name, p, ok := d.named(b)
	if !ok {
		return
	}
	sv := &serviceDecl{Service: Service{Name: name, Pos: p}, w: newWhere()}
	s := d.scope("service "+strconv.Quote(name), b.Body, sv.w, "")
	s.check(schema{
		attrs:  append([]string{"balancer", "proxy_protocol", "connect_timeout", "fail_timeout"}, httpServiceAttrs...),
		blocks: append([]string{"backend", "tls", "respond"}, httpServiceBlocks...),
		later:  []string{"fallback"},
	})
	s.str("balancer", &sv.Balancer)
	s.str("proxy_protocol", &sv.ProxyProtocol)
	s.duration("connect_timeout", &sv.ConnectTimeout)
	s.duration("fail_timeout", &sv.FailTimeout)
	for _, bb := range b.Body.Blocks {
		if bb.Type != "backend" {
			continue
		}
		s.attempted("backend", posOf(bb.TypeRange))
		if !d.labels(bb, s.ctx, 1) {
			continue
		}
		label := bb.Labels[0]
		be := &backendDecl{Backend: Backend{Address: label, Pos: posOf(bb.LabelRanges[0])}, label: label, w: newWhere()}
		if scheme, rest, ok := strings.Cut(label, "://"); ok {
			be.scheme, be.Address = strings.ToLower(scheme), rest
			be.Scheme = be.scheme
			be.TLS = be.scheme == SchemeTLS || be.scheme == SchemeHTTPS || be.scheme == SchemeH3
		}
		bs := d.scope(fmt.Sprintf("%s: backend %q", s.ctx, label), bb.Body, be.w, "")
		bs.check(schema{attrs: []string{"weight"}})
		bs.integer("weight", &be.Weight)
		sv.backends = append(sv.backends, be)
	}
	for _, nb := range s.nested("tls") {
		d.backendTLS(sv, s.ctx, nb)
	}
	d.serviceHTTP(sv, s)
	d.out.services = append(d.out.services, sv)
}
