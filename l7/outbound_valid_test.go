package l7

import (
	"net/http"
	"net/netip"
	"net/url"
	"testing"
)

// buildHeader's verdict on its fields (outbound.valid), which spares
// h1Transport.fast its own check, is false whenever any field it sets is
// one fast would refuse, whichever input it came from.
func TestBuildHeaderValid(t *testing.T) {
	peer := netip.MustParseAddr("192.0.2.1")
	for _, c := range []struct {
		name    string
		hdr     http.Header
		host    string
		peer    netip.Addr
		trusted bool
		want    bool
	}{
		{name: "plain", hdr: http.Header{"Accept": {"*/*"}}, host: "a.test", want: true},
		{name: "no fields", hdr: http.Header{}, host: "a.test", want: true},
		{name: "tab in a value", hdr: http.Header{"X-A": {"a\tb"}}, host: "a.test", want: true},
		{name: "control byte in a value", hdr: http.Header{"X-A": {"a\x01b"}}, host: "a.test"},
		{name: "CRLF in a value", hdr: http.Header{"X-A": {"ok", "a\r\nX-Injected: 1"}}, host: "a.test"},
		{name: "bad name", hdr: http.Header{"X A": {"v"}}, host: "a.test"},
		{name: "control byte in Host", hdr: http.Header{}, host: "a\x7f.test"},
		{name: "dropped field not checked", hdr: http.Header{"Keep-Alive": {"a\x01"}}, host: "a.test", want: true},
		{name: "untrusted chain dropped", hdr: http.Header{"X-Forwarded-For": {"a\x01"}}, host: "a.test", want: true},
		{name: "trusted chain", hdr: http.Header{"X-Forwarded-For": {"198.51.100.7"}}, host: "a.test", trusted: true, want: true},
		{name: "trusted bad X-Forwarded-For", hdr: http.Header{"X-Forwarded-For": {"a\x01"}}, host: "a.test", trusted: true},
		{name: "trusted bad Forwarded", hdr: http.Header{"Forwarded": {"for=\x00"}}, host: "a.test", trusted: true},
		{name: "trusted bad X-Forwarded-Proto", hdr: http.Header{"X-Forwarded-Proto": {"ht\ntp"}}, host: "a.test", trusted: true},
		{name: "trusted bad X-Forwarded-Host", hdr: http.Header{"X-Forwarded-Host": {"h\r"}}, host: "a.test", trusted: true},
		{name: "bad Via", hdr: http.Header{"Via": {"1.1 x\x00"}}, host: "a.test"},
		{name: "zone with a control byte", hdr: http.Header{}, host: "a.test", peer: netip.MustParseAddr("fe80::1%a\x01b")},
		{name: "zone", hdr: http.Header{}, host: "a.test", peer: netip.MustParseAddr("fe80::1%eth0"), want: true},
	} {
		p := c.peer
		if !p.IsValid() {
			p = peer
		}
		in := &http.Request{Method: "GET", URL: &url.URL{Path: "/"}, Host: c.host, Header: c.hdr, ProtoMajor: 1, ProtoMinor: 1}
		ri := &reqInfo{peer: p, trusted: c.trusted, requestID: "id1"}
		var o outbound
		h := o.buildHeader(in, ri, "")
		if o.valid != c.want {
			t.Errorf("%s: valid = %v, want %v", c.name, o.valid, c.want)
		}
		// The verdict agrees with fast's own check of the whole header.
		all := true
		for k, vv := range h {
			all = all && validField(k, vv)
		}
		if o.valid && !all {
			t.Errorf("%s: valid, but fast's check refuses %q", c.name, h)
		}
	}
}

// fast skips its check only for the very request the proxy checked.
func TestFastTrustsOnlyTheCheckedRequest(t *testing.T) {
	tr := newH1("127.0.0.1:1")
	defer tr.CloseIdleConnections()
	bad, _ := http.NewRequest("GET", "http://127.0.0.1:1/", nil)
	bad.Header["X-Bad"] = []string{"a\r\nInjected: 1"}
	other, _ := http.NewRequest("GET", "http://127.0.0.1:1/", nil)
	ri := &reqInfo{checked: other}
	if tr.fast(bad, ri) {
		t.Fatal("a request other than the checked one skipped the check")
	}
	ri.checked = bad // as if the proxy had found it valid: fast believes it
	if !tr.fast(bad, ri) {
		t.Fatal("the checked request was checked again")
	}
}

// buildHeader's verdict never says valid of a header fast's own check
// would refuse, whatever the client's fields, Host, peer (zone included),
// protocol version and trust.
func FuzzBuildHeaderValid(f *testing.F) {
	f.Add("X-A", "v", "Via", "1.1 x", "a.test", "", true, 1, 1)
	f.Add("X-A", "a\r\nX: 1", "Forwarded", "for=x", "a.test", "", true, 1, 1)
	f.Add("Accept", "*/*", "X-Forwarded-Host", "h\x00", "a\x7f.test", "eth0", true, 2, 0)
	f.Add("X A", "v", "X-Forwarded-Proto", "ht\ntp", "a.test", "a\x01b", false, 0, 9)
	f.Add("Connection", "X-B", "X-B", "\x01", "[::1]:80", "", false, -1, -1)
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, host, zone string, trusted bool, major, minor int) {
		peer := netip.MustParseAddr("fe80::1")
		if zone != "" {
			peer = peer.WithZone(zone)
		}
		hdr := http.Header{}
		hdr[k1] = append(hdr[k1], v1)
		hdr[k2] = append(hdr[k2], v2)
		in := &http.Request{Method: "GET", URL: &url.URL{Path: "/"}, Host: host, Header: hdr, ProtoMajor: major, ProtoMinor: minor}
		ri := &reqInfo{peer: peer, trusted: trusted, requestID: "id1"}
		var o outbound
		h := o.buildHeader(in, ri, "")
		if !o.valid {
			return
		}
		for k, vv := range h {
			if !validField(k, vv) {
				t.Fatalf("valid, but fast's check refuses %q: %q", k, vv)
			}
		}
	})
}
