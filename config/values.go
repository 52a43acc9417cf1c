package config

import (
	"fmt"
	"math"
	"math/big"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// scopeCtx is the state of the file being decoded: the functions of its
// expressions and its directory, against which relative paths resolve.
type scopeCtx struct {
	eval *hcl.EvalContext
	dir  string
}

// scope decodes the attributes of one block body. ctx prefixes messages
// ("entrypoint \"web\": timeouts"); key prefixes the keys recorded in w.
type scope struct {
	d    *decoder
	ctx  string
	body *hclsyntax.Body
	w    where
	key  string
}

func (d *decoder) scope(ctx string, body *hclsyntax.Body, w where, key string) *scope {
	return &scope{d: d, ctx: ctx, body: body, w: w, key: key}
}

func (s *scope) errf(p Pos, format string, args ...any) {
	s.d.errf(p, "%s: %s", s.ctx, fmt.Sprintf(format, args...))
}

// schema lists what a block body may contain. later names attributes or
// blocks of the design that a later release implements.
type schema struct {
	attrs  []string
	blocks []string
	later  []string
}

func attrsInOrder(b *hclsyntax.Body) []*hclsyntax.Attribute {
	as := make([]*hclsyntax.Attribute, 0, len(b.Attributes))
	for _, a := range b.Attributes {
		as = append(as, a)
	}
	slices.SortFunc(as, func(x, y *hclsyntax.Attribute) int {
		return x.SrcRange.Start.Byte - y.SrcRange.Start.Byte
	})
	return as
}

// check reports every attribute and block the schema does not allow.
func (s *scope) check(sc schema) {
	for _, a := range attrsInOrder(s.body) {
		p := posOf(a.NameRange)
		switch {
		case slices.Contains(sc.attrs, a.Name):
		case slices.Contains(sc.later, a.Name):
			s.errf(p, "%s is not supported yet; remove it", a.Name)
		case slices.Contains(sc.blocks, a.Name):
			s.errf(p, "%s is a block, not an attribute; write %s { ... } without \"=\"", a.Name, a.Name)
			s.attempted(a.Name, p)
		default:
			s.errf(p, "unsupported attribute %q%s", a.Name, didYouMean(a.Name, sc.attrs))
			s.attempted(closest(a.Name, sc.attrs), p)
		}
	}
	for _, b := range s.body.Blocks {
		p := posOf(b.TypeRange)
		switch {
		case slices.Contains(sc.blocks, b.Type):
		case slices.Contains(sc.later, b.Type):
			s.errf(p, "block %q is not supported yet; remove it", b.Type)
		case slices.Contains(sc.attrs, b.Type):
			s.errf(p, "%s is an attribute, not a block; write %s = VALUE", b.Type, b.Type)
			s.attempted(b.Type, p)
		default:
			s.errf(p, "unsupported block %q%s", b.Type, didYouMean(b.Type, sc.blocks))
			s.attempted(closest(b.Type, sc.blocks), p)
		}
	}
}

// attempted records that the user evidently meant to write name (a typo or
// a block written as an attribute, already reported): it counts as present
// but broken, so no "missing required attribute" follows the first message.
func (s *scope) attempted(name string, p Pos) {
	if name == "" {
		return
	}
	if _, ok := s.w.pos[s.key+name]; !ok {
		s.w.pos[s.key+name] = p
	}
	s.w.bad[s.key+name] = true
}

// nested returns the unlabelled blocks of type typ; a repeated one is an
// error and dropped.
func (s *scope) nested(typ string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, b := range s.body.Blocks {
		if b.Type != typ || !s.d.labels(b, s.ctx, 0) {
			continue
		}
		if len(out) > 0 {
			s.errf(posOf(b.TypeRange), "duplicate %s block; first defined at %s", typ, posOf(out[0].TypeRange))
			continue
		}
		out = append(out, b)
	}
	return out
}

// eval evaluates expression e recorded under key. ok is false after an
// error, which is already reported.
func (s *scope) eval(name, key string, e hclsyntax.Expression) (cty.Value, Pos, bool) {
	p := posOf(e.Range())
	s.w.pos[key] = p
	if v, ok := literalString(e); ok {
		return v, p, true
	}
	v, hd := e.Value(s.d.ectx.eval)
	if hd.HasErrors() {
		s.d.diags = append(s.d.diags, fromHCL(s.ctx+": "+name, hd)...)
		s.w.bad[key] = true
		return cty.NilVal, p, false
	}
	if v.IsNull() {
		s.errf(p, "%s must not be null; remove it to use the default", name)
		s.w.bad[key] = true
		return cty.NilVal, p, false
	}
	if !v.IsWhollyKnown() {
		s.errf(p, "%s has no known value", name)
		s.w.bad[key] = true
		return cty.NilVal, p, false
	}
	return v, p, true
}

// literalString is the value of a quoted string without interpolation,
// which is what nearly every attribute of a large configuration is. It is
// the value TemplateExpr.Value returns (a known, unmarked cty.String; NFC
// normalisation is idempotent), without that method's buffer, marks map
// and conversion per string.
func literalString(e hclsyntax.Expression) (cty.Value, bool) {
	t, ok := e.(*hclsyntax.TemplateExpr)
	if !ok || len(t.Parts) != 1 {
		return cty.NilVal, false
	}
	l, ok := t.Parts[0].(*hclsyntax.LiteralValueExpr)
	if !ok || l.Val.Type() != cty.String || l.Val.IsNull() || !l.Val.IsKnown() || l.Val.IsMarked() {
		return cty.NilVal, false
	}
	return l.Val, true
}

func (s *scope) attr(name string) (cty.Value, Pos, bool) {
	a := s.body.Attributes[name]
	if a == nil {
		return cty.NilVal, Pos{}, false
	}
	return s.eval(name, s.key+name, a.Expr)
}

func (s *scope) fail(name string) { s.w.bad[s.key+name] = true }

func describe(v cty.Value) string {
	if v.Type() == cty.String {
		return fmt.Sprintf("string %q", v.AsString())
	}
	return v.Type().FriendlyName()
}

// str decodes a string attribute into dst; it reports whether one was set.
func (s *scope) str(name string, dst *string) bool {
	v, p, ok := s.attr(name)
	if !ok {
		return false
	}
	if v.Type() != cty.String {
		s.errf(p, "%s must be a string, got %s", name, describe(v))
		s.fail(name)
		return false
	}
	*dst = v.AsString()
	return true
}

// integer decodes a whole number; a string holding one (as env() returns)
// is accepted.
func (s *scope) integer(name string, dst *int) bool {
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
	if !bf.IsInt() || acc != big.Exact || i > math.MaxInt32 || i < math.MinInt32 {
		s.errf(p, "%s must be a whole number between %d and %d, got %s", name, math.MinInt32, math.MaxInt32, bf.Text('g', 10))
		s.fail(name)
		return false
	}
	*dst = int(i)
	return true
}

func (s *scope) boolean(name string, dst *bool) bool {
	v, p, ok := s.attr(name)
	if !ok {
		return false
	}
	b, err := convert.Convert(v, cty.Bool)
	if err != nil {
		s.errf(p, "%s must be true or false, got %s", name, describe(v))
		s.fail(name)
		return false
	}
	*dst = b.True()
	return true
}

// duration decodes a Go duration string such as "250ms" or "1m30s".
func (s *scope) duration(name string, dst *time.Duration) bool {
	v, p, ok := s.attr(name)
	if !ok {
		return false
	}
	if v.Type() == cty.Number {
		// nginx and HAProxy take bare seconds (add_header max-age=600,
		// timeout 30); say how to write that here rather than "must be a
		// string".
		s.errf(p, "%s must be a duration string with a unit, e.g. \"%ss\", got number %s", name, v.AsBigFloat().Text('g', 10), v.AsBigFloat().Text('g', 10))
		s.fail(name)
		return false
	}
	var str string
	if !s.str(name, &str) {
		return false
	}
	dur, err := parseDuration(str)
	if err != nil {
		s.errf(s.w.pos[s.key+name], "%s %q: invalid duration; write a number with a unit, e.g. \"30s\", \"250ms\" or \"30d\"", name, str)
		s.fail(name)
		return false
	}
	*dst = dur
	return true
}

// parseDuration is time.ParseDuration plus the unit "d" (24h), which
// nginx, HAProxy and Caddy accept and which long settings (hsts max_age,
// renew_before, sticky max_age) are naturally written in: "30d", "1.5d",
// "1d12h".
func parseDuration(str string) (time.Duration, error) {
	if !strings.Contains(str, "d") {
		return time.ParseDuration(str)
	}
	var b strings.Builder
	from := 0 // start of the text not yet copied
	for i := 0; i < len(str); i++ {
		if str[i] != 'd' {
			continue
		}
		j := i
		for j > from && ('0' <= str[j-1] && str[j-1] <= '9' || str[j-1] == '.') {
			j--
		}
		days, err := strconv.ParseFloat(str[j:i], 64)
		if j == i || err != nil {
			return 0, fmt.Errorf("time: invalid duration %q", str)
		}
		b.WriteString(str[from:j])
		b.WriteString(strconv.FormatFloat(days*24, 'f', -1, 64))
		b.WriteByte('h')
		from = i + 1
	}
	b.WriteString(str[from:])
	return time.ParseDuration(b.String())
}

// strList decodes a list of strings. When the list is written literally,
// each element's position is recorded under "name.i" so errors can point at
// the element.
func (s *scope) strList(name string) []string {
	a := s.body.Attributes[name]
	if a == nil {
		return nil
	}
	key := s.key + name
	if tup, ok := a.Expr.(*hclsyntax.TupleConsExpr); ok {
		s.w.pos[key] = posOf(tup.Range())
		out := []string{}
		for i, e := range tup.Exprs {
			// Concatenation, not Sprintf: this runs for every list
			// element of every route in a large configuration.
			is := strconv.Itoa(i)
			ek := key + "." + is
			v, p, ok := s.eval(name+"["+is+"]", ek, e)
			if !ok {
				s.w.bad[key] = true
				continue
			}
			if v.Type() != cty.String {
				s.errf(p, "%s[%d] must be a string, got %s", name, i, describe(v))
				s.w.bad[key] = true
				continue
			}
			out = append(out, v.AsString())
		}
		return out
	}
	v, p, ok := s.eval(name, key, a.Expr)
	if !ok {
		return nil
	}
	t := v.Type()
	if !t.IsTupleType() && !t.IsListType() && !t.IsSetType() {
		s.errf(p, "%s must be a list of strings, e.g. [\"a\", \"b\"]; got %s", name, describe(v))
		s.fail(name)
		return nil
	}
	out := []string{}
	i := 0
	for it := v.ElementIterator(); it.Next(); i++ {
		_, ev := it.Element()
		s.w.pos[fmt.Sprintf("%s.%d", key, i)] = p
		if ev.IsNull() || ev.Type() != cty.String {
			s.errf(p, "%s[%d] must be a string", name, i)
			s.fail(name)
			continue
		}
		out = append(out, ev.AsString())
	}
	return out
}

// normList decodes a list of strings that norm normalises, with the
// position of each kept element. norm returns the normal form, or the
// problem to report after "name[i] \"value\"" (the attribute then fails).
// A value listed twice after normalising is reported, with why (same) the
// two spellings are one, and kept once.
func (s *scope) normList(name, same string, norm func(string) (string, string)) ([]string, []Pos) {
	strs := s.strList(name)
	key := s.key + name
	if strs == nil || s.w.bad[key] {
		return nil, nil
	}
	out, pos := []string{}, []Pos{}
	for i, str := range strs {
		at := s.w.at(fmt.Sprintf("%s.%d", key, i), s.w.pos[key])
		n, problem := norm(str)
		switch {
		case problem != "":
			s.errf(at, "%s[%d] %q%s", name, i, str, problem)
			s.w.bad[key] = true
		case slices.Contains(out, n) && n == str:
			s.errf(at, "%s %q is listed twice", name, str)
		case slices.Contains(out, n):
			s.errf(at, "%s %q is listed twice, as %q (%s)", name, str, n, same)
		default:
			out, pos = append(out, n), append(pos, at)
		}
	}
	return out, pos
}

// cidrs decodes a list of CIDR prefixes; a bare IP means a single host
// (/32 or /128). Host bits are cleared: "10.1.2.3/8" is 10.0.0.0/8.
func (s *scope) cidrs(name string) []netip.Prefix {
	strs := s.strList(name)
	key := s.key + name
	if strs == nil || s.w.bad[key] {
		return nil
	}
	out := []netip.Prefix{}
	for i, str := range strs {
		p, err := parseCIDR(str)
		if err != nil {
			s.errf(s.w.at(fmt.Sprintf("%s.%d", key, i), s.w.pos[key]),
				"%s[%d] %q: invalid CIDR; write an IP with a prefix length, e.g. \"10.0.0.0/8\", or a single IP", name, i, str)
			s.w.bad[key] = true
			continue
		}
		out = append(out, p)
	}
	return out
}

func parseCIDR(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(a.WithZone(""), a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return p.Masked(), nil
}
