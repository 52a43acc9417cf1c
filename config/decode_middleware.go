package config

import (
	"fmt"
	"math/big"
	"net/textproto"
	"net/url"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// mwKinds are the kinds of a middleware block, in the order messages list
// them.
var mwKinds = []string{
	MWRateLimit, MWInFlight, MWBasicAuth, MWForwardAuth, MWHeaders, MWCompress,
	MWRedirectScheme, MWRedirectRegex, MWStripPrefix, MWAddPrefix, MWReplacePath,
	MWReplacePathRegex, MWIPAllow, MWIPDeny, MWMaxBody, MWErrorPages,
}

// mwDecl is a decoded middleware block. The attributes of its kind block
// are recorded in w without a prefix (a middleware has one kind); those of
// the nested blocks of headers under "request.", "response.", "cors." and
// "hsts.".
type mwDecl struct {
	Middleware
	w      where
	kindAt Pos // the kind block; missing attributes are reported here
}

// middleware decodes a top-level `middleware "name" { KIND { ... } }`.
func (d *decoder) middleware(b *hclsyntax.Block) {
	name, p, ok := d.named(b)
	if !ok {
		return
	}
	m := &mwDecl{Middleware: Middleware{Name: name, Pos: p}, w: newWhere()}
	ctx := fmt.Sprintf("middleware %q", name)
	for _, a := range attrsInOrder(b.Body) {
		if slices.Contains(mwKinds, a.Name) {
			d.errf(posOf(a.NameRange), "%s: %s is a block, not an attribute; write %s { ... } without \"=\"", ctx, a.Name, a.Name)
			continue
		}
		d.errf(posOf(a.NameRange), "%s: unsupported attribute %q; a middleware holds one kind block, e.g. rate_limit { average = 100 }", ctx, a.Name)
	}
	for _, kb := range b.Body.Blocks {
		if !slices.Contains(mwKinds, kb.Type) {
			d.errf(posOf(kb.TypeRange), "%s: unknown kind %q%s", ctx, kb.Type, oneOf(kb.Type, mwKinds))
		}
	}
	var first *hclsyntax.Block
	for _, kb := range b.Body.Blocks {
		if !slices.Contains(mwKinds, kb.Type) {
			continue
		}
		if first != nil && first.Type == kb.Type {
			d.errf(posOf(kb.TypeRange), "%s: duplicate %s block; first defined at %s; a middleware holds exactly one kind", ctx, kb.Type, posOf(first.TypeRange))
			continue
		}
		if first != nil {
			d.errf(posOf(kb.TypeRange), "%s: %s and %s (%s) in one middleware; a middleware holds exactly one kind, so put %s in a middleware of its own",
				ctx, kb.Type, first.Type, posOf(first.TypeRange), kb.Type)
			continue
		}
		first = kb
		if !d.labels(kb, ctx, 0) {
			continue
		}
		m.Kind, m.kindAt = kb.Type, posOf(kb.TypeRange)
		d.mwKind(m, ctx+": "+kb.Type, kb.Body)
	}
	if len(b.Body.Blocks) == 0 && !slices.ContainsFunc(attrsInOrder(b.Body), func(a *hclsyntax.Attribute) bool { return slices.Contains(mwKinds, a.Name) }) {
		d.errf(p, "middleware %q needs one kind: %s", name, strings.Join(mwKinds, ", "))
	}
	d.out.middlewares = append(d.out.middlewares, m)
}

// mwKind decodes the kind block of m into the matching field.
func (d *decoder) mwKind(m *mwDecl, ctx string, body *hclsyntax.Body) {
	s := d.scope(ctx, body, m.w, "")
	attrs := func(names ...string) { s.check(schema{attrs: names}) }
	switch m.Kind {
	case MWRateLimit:
		attrs("average", "burst", "period", "key", "max_keys")
		x := &RateLimit{}
		m.RateLimit = x
		s.integer("average", &x.Average)
		s.integer("burst", &x.Burst)
		s.duration("period", &x.Period)
		s.limitKey("key", &x.Key)
		s.integer("max_keys", &x.MaxKeys)
	case MWInFlight:
		attrs("max", "key")
		x := &InFlight{}
		m.InFlight = x
		s.integer("max", &x.Max)
		s.limitKey("key", &x.Key)
	case MWBasicAuth:
		attrs("users", "users_file", "realm", "strip_header", "header_field")
		x := &BasicAuth{}
		m.BasicAuth = x
		x.Users = s.strList("users")
		if s.str("users_file", &x.UsersFile) {
			x.UsersFile = d.path(x.UsersFile)
		}
		s.str("realm", &x.Realm)
		s.boolean("strip_header", &x.StripHeader)
		if s.str("header_field", &x.HeaderField) && isToken(x.HeaderField) {
			x.HeaderField = textproto.CanonicalMIMEHeaderKey(x.HeaderField)
		}
	case MWForwardAuth:
		attrs("address", "trust_forward_header", "request_headers", "response_headers", "timeout")
		x := &ForwardAuth{}
		m.ForwardAuth = x
		if s.str("address", &x.Address) {
			if u, err := url.Parse(x.Address); err == nil && u.Scheme != "" {
				x.Address = u.Scheme + x.Address[len(u.Scheme):] // scheme lower-cased
			}
		}
		s.boolean("trust_forward_header", &x.TrustForwardHeader)
		x.RequestHeaders = s.headerNames("request_headers")
		x.ResponseHeaders = s.headerNames("response_headers")
		s.duration("timeout", &x.Timeout)
	case MWHeaders:
		s.check(schema{attrs: []string{"security"}, blocks: []string{"request", "response", "cors", "hsts"}})
		x := &Headers{}
		m.Headers = x
		d.headerOps(s, "request", &x.Request)
		d.headerOps(s, "response", &x.Response)
		s.boolean("security", &x.Security)
		for _, nb := range s.nested("cors") {
			m.w.pos["cors"] = posOf(nb.TypeRange)
			c := &CORS{}
			x.CORS = c
			ns := d.scope(ctx+": cors", nb.Body, m.w, "cors.")
			ns.check(schema{attrs: []string{"allow_origins", "allow_methods", "allow_headers", "expose_headers", "allow_credentials", "max_age"}})
			c.AllowOrigins = ns.strList("allow_origins")
			for i, o := range c.AllowOrigins {
				// A well-formed origin is case-insensitive throughout.
				if u, err := url.Parse(o); err == nil && u.Scheme != "" && u.Host != "" && u.Opaque == "" &&
					u.User == nil && u.Path == "" && u.RawQuery == "" && u.Fragment == "" && !u.ForceQuery {
					c.AllowOrigins[i] = strings.ToLower(o)
				}
			}
			c.AllowMethods = ns.methodList("allow_methods")
			c.AllowHeaders = ns.headerNames("allow_headers")
			c.ExposeHeaders = ns.headerNames("expose_headers")
			ns.boolean("allow_credentials", &c.AllowCredentials)
			ns.duration("max_age", &c.MaxAge)
		}
		for _, nb := range s.nested("hsts") {
			m.w.pos["hsts"] = posOf(nb.TypeRange)
			h := &HSTS{}
			x.HSTS = h
			ns := d.scope(ctx+": hsts", nb.Body, m.w, "hsts.")
			ns.check(schema{attrs: []string{"max_age", "include_subdomains", "preload"}})
			ns.duration("max_age", &h.MaxAge)
			ns.boolean("include_subdomains", &h.IncludeSubdomains)
			ns.boolean("preload", &h.Preload)
		}
	case MWCompress:
		attrs("encodings", "min_length", "types")
		x := &Compress{}
		m.Compress = x
		x.Encodings = s.strList("encodings")
		s.integer("min_length", &x.MinLength)
		x.Types = s.strList("types")
		for i := range x.Types {
			x.Types[i] = strings.ToLower(x.Types[i])
		}
	case MWRedirectScheme:
		attrs("scheme", "port", "permanent")
		x := &RedirectScheme{}
		m.RedirectScheme = x
		if s.str("scheme", &x.Scheme) {
			x.Scheme = strings.ToLower(x.Scheme)
		}
		s.integer("port", &x.Port)
		s.boolean("permanent", &x.Permanent)
	case MWRedirectRegex:
		attrs("regex", "replacement", "permanent")
		x := &RedirectRegex{}
		m.RedirectRegex = x
		s.str("regex", &x.Regex)
		s.replacement("replacement", &x.Replacement)
		s.boolean("permanent", &x.Permanent)
	case MWStripPrefix:
		attrs("prefixes")
		m.StripPrefix = &StripPrefix{Prefixes: s.strList("prefixes")}
	case MWAddPrefix:
		attrs("prefix")
		m.AddPrefix = &AddPrefix{}
		s.str("prefix", &m.AddPrefix.Prefix)
	case MWReplacePath:
		attrs("path")
		m.ReplacePath = &ReplacePath{}
		s.str("path", &m.ReplacePath.Path)
	case MWReplacePathRegex:
		attrs("regex", "replacement")
		x := &ReplacePathRegex{}
		m.ReplacePathRegex = x
		s.str("regex", &x.Regex)
		s.replacement("replacement", &x.Replacement)
	case MWIPAllow, MWIPDeny:
		attrs("cidrs", "depth") // depth on ip_deny is reported by validation
		x := &IPFilter{CIDRs: s.cidrs("cidrs")}
		s.integer("depth", &x.Depth)
		if m.Kind == MWIPAllow {
			m.IPAllow = x
		} else {
			m.IPDeny = x
		}
	case MWMaxBody:
		attrs("bytes")
		m.MaxBody = &MaxBody{}
		s.int64("bytes", &m.MaxBody.Bytes)
	case MWErrorPages:
		attrs("statuses", "service", "path")
		x := &ErrorPages{}
		m.ErrorPages = x
		x.Statuses = s.statusList("statuses", 400, 599)
		s.str("service", &x.Service)
		s.str("path", &x.Path)
	}
}

// headerOps decodes a `request` or `response` block of headers.
func (d *decoder) headerOps(s *scope, typ string, ops *HeaderOps) {
	for _, nb := range s.nested(typ) {
		s.w.pos[typ] = posOf(nb.TypeRange)
		ns := d.scope(s.ctx+": "+typ, nb.Body, s.w, typ+".")
		ns.check(schema{attrs: []string{"set", "add", "remove"}})
		ops.Set = ns.headerValues("set")
		ops.Add = ns.headerValues("add")
		ops.Remove = ns.headerNames("remove")
	}
}

// framingHeaders are derived from the body by proxynow; no middleware
// sets, adds or removes them.
var framingHeaders = []string{"Content-Length", "Transfer-Encoding"}

// headerValues decodes a map of header names to values; names are
// canonicalised.
func (s *scope) headerValues(name string) map[string]string {
	es, ok := s.strMap(name)
	if !ok {
		return nil
	}
	out := map[string]string{}
	for _, e := range es {
		c := textproto.CanonicalMIMEHeaderKey(e.key)
		switch _, dup := out[c]; {
		case !isToken(e.key):
			s.errf(e.keyAt, "%s: %q is not a header name; use letters, digits and !#$%%&'*+-.^_`|~", name, e.key)
		case slices.Contains(framingHeaders, c):
			s.errf(e.keyAt, "%s: %s is set from the body; remove it", name, c)
		case strings.ContainsAny(e.val, "\r\n\x00"):
			s.errf(e.valAt, "%s[%q]: a header value must not hold CR, LF or NUL", name, e.key)
		case dup:
			s.errf(e.keyAt, "%s: header %q is listed twice (header names ignore case)", name, c)
		default:
			out[c] = e.val
			continue
		}
		s.fail(name)
	}
	return out
}

// headerNames decodes a list of header names, canonicalised. A name
// listed twice is reported and kept once.
func (s *scope) headerNames(name string) []string {
	strs := s.strList(name)
	key := s.key + name
	if strs == nil || s.w.bad[key] {
		return nil
	}
	out := []string{}
	for i, str := range strs {
		at := s.w.at(fmt.Sprintf("%s.%d", key, i), s.w.pos[key])
		c := textproto.CanonicalMIMEHeaderKey(str)
		switch {
		case !isToken(str):
			s.errf(at, "%s[%d] %q is not a header name; use letters, digits and !#$%%&'*+-.^_`|~", name, i, str)
			s.w.bad[key] = true
		case slices.Contains(framingHeaders, c) && name == "remove":
			s.errf(at, "%s: %s is set from the body; remove it from the list", name, c)
			s.w.bad[key] = true
		case slices.Contains(out, c):
			s.errf(at, "%s: header %q is listed twice (header names ignore case)", name, c)
		default:
			out = append(out, c)
		}
	}
	return out
}

// limitKey decodes the key of rate_limit and in_flight; the name of
// "header:NAME" is canonicalised (validation checks the rest).
func (s *scope) limitKey(name string, dst *string) {
	if !s.str(name, dst) {
		return
	}
	if k, ok := strings.CutPrefix(*dst, "header:"); ok && isToken(k) {
		*dst = "header:" + textproto.CanonicalMIMEHeaderKey(k)
	}
}

// int64 decodes a whole number that may exceed the int32 range of
// integer; a string holding one is accepted.
func (s *scope) int64(name string, dst *int64) bool {
	v, p, ok := s.attr(name)
	if !ok {
		return false
	}
	n, err := convert.Convert(v, cty.Number)
	if err != nil {
		s.errf(p, "%s must be a whole number, got %s", name, describe(v))
		s.fail(name)
		return false
	}
	bf := n.AsBigFloat()
	i, acc := bf.Int64()
	if !bf.IsInt() || acc != big.Exact {
		s.errf(p, "%s must be a whole number of at most 63 bits, got %s", name, bf.Text('g', 20))
		s.fail(name)
		return false
	}
	*dst = i
	return true
}

// statusList decodes a list of statuses and inclusive ranges ("404",
// "500-599"; a number is accepted for one status), each within lo..hi.
func (s *scope) statusList(name string, lo, hi int) []StatusRange {
	a := s.body.Attributes[name]
	if a == nil {
		return nil
	}
	key := s.key + name
	var elems []cty.Value
	var at []Pos
	if tup, ok := a.Expr.(*hclsyntax.TupleConsExpr); ok {
		s.w.pos[key] = posOf(tup.Range())
		for i, e := range tup.Exprs {
			v, p, ok := s.eval(fmt.Sprintf("%s[%d]", name, i), fmt.Sprintf("%s.%d", key, i), e)
			if !ok {
				s.w.bad[key] = true
				continue
			}
			elems, at = append(elems, v), append(at, p)
		}
	} else {
		v, p, ok := s.eval(name, key, a.Expr)
		if !ok {
			return nil
		}
		if t := v.Type(); !t.IsTupleType() && !t.IsListType() && !t.IsSetType() {
			s.errf(p, "%s must be a list such as [\"404\", \"500-599\"]; got %s", name, describe(v))
			s.fail(name)
			return nil
		}
		for it := v.ElementIterator(); it.Next(); {
			_, ev := it.Element()
			elems, at = append(elems, ev), append(at, p)
		}
	}
	out := []StatusRange{}
	for i, v := range elems {
		sv, err := convert.Convert(v, cty.String)
		var r StatusRange
		if err == nil && !sv.IsNull() {
			r.Lo, r.Hi, err = parseStatusRange(sv.AsString())
		} else if err == nil {
			err = fmt.Errorf("null is not a status")
		}
		if err == nil && (r.Lo < lo || r.Hi > hi) {
			err = fmt.Errorf("%q is outside %d-%d", sv.AsString(), lo, hi)
		}
		if err != nil {
			s.errf(at[i], "%s[%d]: %v; write a status such as \"404\" or a range such as \"500-599\", between %d and %d", name, i, err, lo, hi)
			s.fail(name)
			continue
		}
		out = append(out, r)
	}
	return out
}

// replacement decodes the replacement of a regex. A group reference
// written "${1}" is HCL interpolation of the number 1, which silently
// becomes "1": it is refused with the two spellings that work.
func (s *scope) replacement(name string, dst *string) {
	a := s.body.Attributes[name]
	if a == nil {
		return
	}
	var parts []hclsyntax.Expression
	switch t := a.Expr.(type) {
	case *hclsyntax.TemplateExpr:
		parts = t.Parts
	case *hclsyntax.TemplateWrapExpr:
		parts = []hclsyntax.Expression{t.Wrapped}
	}
	for _, p := range parts {
		if l, ok := p.(*hclsyntax.LiteralValueExpr); ok && l.Val.Type() == cty.Number {
			n := l.Val.AsBigFloat().Text('f', -1)
			s.w.pos[s.key+name] = posOf(a.Expr.Range())
			s.errf(posOf(p.Range()), "%s: \"${%s}\" is HCL interpolation and becomes %q; write \"$${%s}\" or \"$%s\" for the regex group", name, n, n, n, n)
			s.fail(name)
			return
		}
	}
	s.str(name, dst)
}
