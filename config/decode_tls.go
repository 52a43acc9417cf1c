package config

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2/hclsyntax"
)

var (
	tlsModes    = []string{TLSNone, TLSPassthrough, TLSTerminate}
	tlsVersions = []string{TLSVersion12, TLSVersion13}
	// insecureTLSVersions are refused with their own message.
	insecureTLSVersions = []string{"1.0", "1.1"}
	// laterSchemes are backend URL schemes of the design that a later
	// release implements (none left).
	laterSchemes []string
)

// path resolves a file name written in the config against the directory of
// the config file being decoded, as file() does. "" stays "" so that
// validation can report it.
func (d *decoder) path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(d.ectx.dir, p)
}

// tlsBlock decodes the top-level tls block.
func (d *decoder) tlsBlock(b *hclsyntax.Block) {
	t := &d.out.tls
	t.w.pos["tls"] = posOf(b.TypeRange)
	s := d.scope("tls", b.Body, t.w, "")
	s.check(schema{attrs: []string{"min_version"}, blocks: []string{"certificate", "acme"}})
	s.str("min_version", &t.MinVersion)
	for _, cb := range b.Body.Blocks {
		if cb.Type == "acme" {
			d.acmeBlock(cb)
			continue
		}
		if cb.Type != "certificate" || !d.labels(cb, "tls", 1) {
			continue
		}
		name, p := cb.Labels[0], posOf(cb.LabelRanges[0])
		if !d.first("certificate", name, p, fmt.Sprintf("certificate %q", name)) {
			continue
		}
		c := &certDecl{Certificate: Certificate{Name: name, Pos: p}, w: newWhere()}
		cs := d.scope(fmt.Sprintf("tls: certificate %q", name), cb.Body, c.w, "")
		cs.check(schema{attrs: []string{"cert_file", "key_file", "default"}})
		if cs.str("cert_file", &c.CertFile) {
			c.CertFile = d.path(c.CertFile)
		}
		if cs.str("key_file", &c.KeyFile) {
			c.KeyFile = d.path(c.KeyFile)
		}
		cs.boolean("default", &c.Default)
		t.certs = append(t.certs, c)
	}
}

// backendTLS decodes the tls block of a service.
func (d *decoder) backendTLS(sv *serviceDecl, ctx string, b *hclsyntax.Block) {
	bt := &BackendTLS{}
	sv.TLS = bt
	sv.w.pos["tls"] = posOf(b.TypeRange)
	s := d.scope(ctx+": tls", b.Body, sv.w, "tls.")
	s.check(schema{attrs: []string{"server_name", "ca_file", "insecure_skip_verify"}})
	var name string
	if s.str("server_name", &name) {
		n, err := dnsName(name, false)
		if err != nil {
			s.errf(sv.w.pos["tls.server_name"], "server_name %q: %v", name, err)
			s.fail("server_name")
		}
		bt.ServerName = n
	}
	if s.str("ca_file", &bt.CAFile) {
		bt.CAFile = d.path(bt.CAFile)
	}
	s.boolean("insecure_skip_verify", &bt.InsecureSkipVerify)
}

// sniList decodes a list of server names, normalised by dnsName, and the
// position of each. A name listed twice (after normalising) is reported
// and kept once.
func (s *scope) sniList(name string) ([]string, []Pos) {
	return s.normList(name, "names ignore case and a trailing dot", func(str string) (string, string) {
		n, err := dnsName(str, true)
		if err != nil {
			return "", ": " + err.Error()
		}
		return n, ""
	})
}

// alpnList decodes a list of ALPN protocol names (RFC 7301: 1 to 255
// bytes each), and the position of each. They are compared byte for byte,
// never normalised.
func (s *scope) alpnList(name string) ([]string, []Pos) {
	strs := s.strList(name)
	key := s.key + name
	if strs == nil || s.w.bad[key] {
		return nil, nil
	}
	out, pos := []string{}, []Pos{}
	for i, str := range strs {
		at := s.w.at(fmt.Sprintf("%s.%d", key, i), s.w.pos[key])
		switch {
		case len(str) == 0 || len(str) > 255:
			s.errf(at, "%s[%d]: a protocol name is 1 to 255 bytes long, got %d", name, i, len(str))
			s.w.bad[key] = true
		case slices.Contains(out, str):
			s.errf(at, "%s %q is listed twice", name, str)
		default:
			out, pos = append(out, str), append(pos, at)
		}
	}
	return out, pos
}

// dnsName checks a server name and returns it lower-cased without a
// trailing dot. With wildcard, a leftmost label "*" is allowed
// ("*.example.com"); "*" anywhere else is not. IP addresses are refused:
// they are never sent as SNI (RFC 6066, section 3).
func dnsName(s string, wildcard bool) (string, error) {
	n := strings.TrimSuffix(strings.ToLower(s), ".")
	if n == "" {
		return "", errors.New("name is empty")
	}
	if _, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(n, "["), "]")); err == nil {
		if wildcard {
			return "", errors.New("an IP address is never sent as SNI (RFC 6066); match a DNS name, or leave sni out for a catch-all route")
		}
		return "", errors.New("an IP address is not a DNS name; leave server_name out to verify the backend's IP address")
	}
	rest := n
	if wildcard {
		if n == "*" {
			return "", errors.New("a lone \"*\" is not a name; leave sni out for a catch-all route")
		}
		rest = strings.TrimPrefix(n, "*.")
	}
	if strings.Contains(rest, "*") {
		if !wildcard {
			return "", errors.New("a wildcard is not a server name; write the name to verify")
		}
		return "", errors.New("a wildcard must be the whole leftmost label, e.g. \"*.example.com\"")
	}
	if len(n) > 253 {
		return "", fmt.Errorf("name is %d characters long; the limit is 253", len(n))
	}
	labels := strings.Split(rest, ".")
	for _, l := range labels {
		if err := dnsLabel(l); err != nil {
			return "", err
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return "", errors.New("the last label is all digits; is this a mistyped IP address?")
	}
	return n, nil
}

func dnsLabel(l string) error {
	switch {
	case l == "":
		return errors.New("empty label: two dots in a row, or a leading dot")
	case len(l) > 63:
		return fmt.Errorf("label %q is longer than 63 characters", l)
	case l[0] == '-' || l[len(l)-1] == '-':
		return fmt.Errorf("label %q starts or ends with '-'", l)
	}
	for _, c := range l {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		case c > 127:
			return fmt.Errorf("label %q is not ASCII; write an internationalised name in its xn-- form", l)
		default:
			return fmt.Errorf("label %q holds %q; use letters, digits, '-' and '_'", l, c)
		}
	}
	return nil
}
