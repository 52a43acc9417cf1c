package tlsmux

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

// Builders for hand-made ClientHellos; lengths are computed, so a test
// breaks exactly the field it names.

func chCat(parts ...[]byte) []byte   { return bytes.Join(parts, nil) }
func chU16(v int) []byte             { return []byte{byte(v >> 8), byte(v)} }
func chVec8(parts ...[]byte) []byte  { b := chCat(parts...); return chCat([]byte{byte(len(b))}, b) }
func chVec16(parts ...[]byte) []byte { b := chCat(parts...); return chCat(chU16(len(b)), b) }

func chExt(typ int, body ...[]byte) []byte { return chCat(chU16(typ), chVec16(body...)) }

func chSNIExt(names ...string) []byte {
	var list [][]byte
	for _, n := range names {
		list = append(list, []byte{0}, chVec16([]byte(n)))
	}
	return chExt(extServerName, chVec16(list...))
}

func chALPNExt(protos ...string) []byte {
	var list [][]byte
	for _, p := range protos {
		list = append(list, chVec8([]byte(p)))
	}
	return chExt(extALPN, chVec16(list...))
}

func chVersionsExt(vs ...int) []byte {
	var list [][]byte
	for _, v := range vs {
		list = append(list, chU16(v))
	}
	return chExt(extSupportedVersions, chVec8(list...))
}

// chBody is a TLS 1.3-style ClientHello body with the given extensions.
func chBody(exts ...[]byte) []byte {
	return chCat(chU16(0x0303), bytes.Repeat([]byte{7}, 32), chVec8(bytes.Repeat([]byte{9}, 32)),
		chVec16(chU16(0x1301), chU16(0x1302)), chVec8([]byte{0}), chVec16(exts...))
}

// chMsg frames body as a handshake message of type typ.
func chMsg(typ byte, body []byte) []byte {
	n := len(body)
	return chCat([]byte{typ, byte(n >> 16), byte(n >> 8), byte(n)}, body)
}

// chRecords splits msg into handshake records of at most size bytes.
func chRecords(msg []byte, size int) []byte {
	var out []byte
	for len(msg) > 0 {
		k := min(size, len(msg))
		out = append(out, recordTypeHandshake, 3, 1, byte(k>>8), byte(k))
		out = append(out, msg[:k]...)
		msg = msg[k:]
	}
	return out
}

// chHello is a well-formed single-record ClientHello with the given extensions.
func chHello(exts ...[]byte) []byte { return chRecords(chMsg(1, chBody(exts...)), 1<<14) }

// chUnrecord returns the handshake bytes carried by a well-formed record stream.
func chUnrecord(data []byte) []byte {
	var msg []byte
	for len(data) > 0 {
		n := int(data[3])<<8 | int(data[4])
		msg = append(msg, data[5:5+n]...)
		data = data[5+n:]
	}
	return msg
}

// chReadHello reads whole records from r until they hold one handshake message.
func chReadHello(r io.Reader) ([]byte, error) {
	var out []byte
	hs := 0
	for {
		hdr := make([]byte, 5)
		if _, err := io.ReadFull(r, hdr); err != nil {
			return nil, err
		}
		body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, err
		}
		out = append(chCat(out, hdr), body...)
		hs += len(body)
		msg := chUnrecord(out)
		if len(msg) >= 4 && hs >= 4+(int(msg[1])<<16|int(msg[2])<<8|int(msg[3])) {
			return out, nil
		}
	}
}

// chGoClientHello captures the records a crypto/tls client sends first.
func chGoClientHello(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	c, s := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = tls.Client(c, cfg).Handshake()
	}()
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	data, err := chReadHello(s)
	s.Close()
	c.Close()
	<-done
	if err != nil {
		t.Fatalf("capturing crypto/tls ClientHello: %v", err)
	}
	return data
}

// chReplayConn serves fixed bytes to a tls.Server and discards its replies.
type chReplayConn struct {
	net.Conn // nil: only the methods below are used
	r        *bytes.Reader
}

func (c chReplayConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c chReplayConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c chReplayConn) Close() error                     { return nil }
func (c chReplayConn) SetDeadline(time.Time) error      { return nil }
func (c chReplayConn) SetReadDeadline(time.Time) error  { return nil }
func (c chReplayConn) SetWriteDeadline(time.Time) error { return nil }

// chStdlibHello is the oracle: what crypto/tls's server reads from data.
func chStdlibHello(data []byte) (info tls.ClientHelloInfo, ok bool) {
	stop := errors.New("stop")
	cfg := &tls.Config{GetConfigForClient: func(chi *tls.ClientHelloInfo) (*tls.Config, error) {
		info, ok = *chi, true
		return nil, stop
	}}
	_ = tls.Server(chReplayConn{r: bytes.NewReader(data)}, cfg).Handshake()
	return info, ok
}

func chMustParse(t *testing.T, data []byte) *ClientHello {
	t.Helper()
	var h ClientHello
	if need, err := ParseRecords(data, make([]byte, 0, MaxHelloSize), &h); err != nil {
		t.Fatalf("ParseRecords: need %d, %v", need, err)
	}
	return &h
}

func chALPN(h *ClientHello) []string {
	var out []string
	for _, p := range h.ALPN() {
		out = append(out, string(p))
	}
	return out
}

func TestParseRecordsValid(t *testing.T) {
	goHello := chGoClientHello(t, &tls.Config{ServerName: "Example.COM", NextProtos: []string{"h2", "http/1.1"}})
	big := chHello(chSNIExt("big.test"), chExt(21, make([]byte, 20000)), chALPNExt("h2"))
	// A TLS 1.0-style hello whose body ends after the compression methods.
	noExt := chMsg(1, chCat(chU16(0x0301), make([]byte, 32), chVec8(), chVec16(chU16(0x002f)), chVec8([]byte{0})))
	manyALPN := make([]string, 20)
	for i := range manyALPN {
		manyALPN[i] = strings.Repeat("p", i+1)
	}
	tests := []struct {
		name       string
		data       []byte
		sni        string // "" means ServerName must be nil
		alpn       []string
		maxVersion uint16
	}{
		{name: "crypto/tls", data: goHello, sni: "Example.COM", alpn: []string{"h2", "http/1.1"}, maxVersion: tls.VersionTLS13},
		{name: "crypto/tls 1 byte per record", data: chRecords(chUnrecord(goHello), 1), sni: "Example.COM", alpn: []string{"h2", "http/1.1"}, maxVersion: tls.VersionTLS13},
		{name: "crypto/tls 100 bytes per record", data: chRecords(chUnrecord(goHello), 100), sni: "Example.COM", alpn: []string{"h2", "http/1.1"}, maxVersion: tls.VersionTLS13},
		{name: "crypto/tls then application data", data: chCat(goHello, []byte{23, 3, 3, 0, 1, 0}), sni: "Example.COM", alpn: []string{"h2", "http/1.1"}, maxVersion: tls.VersionTLS13},
		{name: "over 16 KiB in two records", data: big, sni: "big.test", alpn: []string{"h2"}, maxVersion: 0x0303},
		{name: "missing SNI", data: chHello(chALPNExt("h2")), sni: "", alpn: []string{"h2"}, maxVersion: 0x0303},
		{name: "no extensions", data: chRecords(noExt, 1<<14), sni: "", alpn: nil, maxVersion: 0x0301},
		{name: "GREASE ignored by MaxVersion", data: chHello(chVersionsExt(0xfafa, 0x0304, 0x0a0a, 0x0303)), sni: "", alpn: nil, maxVersion: 0x0304},
		{name: "only GREASE versions", data: chHello(chVersionsExt(0x1a1a)), sni: "", alpn: nil, maxVersion: 0x0303},
		{name: "ALPN beyond MaxALPN ignored", data: chHello(chALPNExt(manyALPN...)), sni: "", alpn: manyALPN[:MaxALPN], maxVersion: 0x0303},
		{name: "bytes after the hello in its record", data: chRecords(chCat(chMsg(1, chBody(chSNIExt("x.test"))), []byte{1, 2, 3}), 1<<14), sni: "x.test", alpn: nil, maxVersion: 0x0303},
		{name: "unknown extensions skipped", data: chHello(chExt(0x1234, []byte("junk")), chSNIExt("u.test"), chExt(0xfe0d)), sni: "u.test", alpn: nil, maxVersion: 0x0303},
		{name: "pre_shared_key last", data: chHello(chSNIExt("p.test"), chExt(extPreSharedKey, []byte{0})), sni: "p.test", alpn: nil, maxVersion: 0x0303},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := chMustParse(t, tt.data)
			if tt.sni == "" && h.ServerName != nil {
				t.Errorf("ServerName = %q, want nil", h.ServerName)
			} else if string(h.ServerName) != tt.sni {
				t.Errorf("ServerName = %q, want %q", h.ServerName, tt.sni)
			}
			if got := chALPN(h); !slices.Equal(got, tt.alpn) {
				t.Errorf("ALPN = %q, want %q", got, tt.alpn)
			}
			for _, p := range tt.alpn {
				if !h.OffersALPN(p) {
					t.Errorf("OffersALPN(%q) = false", p)
				}
			}
			if h.OffersALPN("spdy/3") {
				t.Error("OffersALPN(spdy/3) = true")
			}
			if got := h.MaxVersion(); got != tt.maxVersion {
				t.Errorf("MaxVersion = %#04x, want %#04x", got, tt.maxVersion)
			}
			if msg := chUnrecord(tt.data); len(msg) <= MaxHelloSize {
				var h2 ClientHello
				if err := ParseHandshake(msg, &h2); err != nil || !chSameHello(h, &h2) {
					t.Errorf("ParseHandshake = %v, %+v; want %+v", err, h2, *h)
				}
			}
			if info, ok := chStdlibHello(tt.data); ok && info.ServerName != strings.ToLower(string(h.ServerName)) &&
				info.ServerName != string(h.ServerName) {
				t.Errorf("crypto/tls server reads ServerName %q, we %q", info.ServerName, h.ServerName)
			}
		})
	}
}

func chSameHello(a, b *ClientHello) bool {
	return a.LegacyVersion == b.LegacyVersion && bytes.Equal(a.ServerName, b.ServerName) &&
		(a.ServerName == nil) == (b.ServerName == nil) &&
		slices.EqualFunc(a.ALPN(), b.ALPN(), bytes.Equal) && slices.Equal(a.SupportedVersions(), b.SupportedVersions())
}

func TestParseRecordsErrors(t *testing.T) {
	goHello := chGoClientHello(t, &tls.Config{ServerName: "a.test"})
	goMsg := chUnrecord(goHello)
	body := chBody(chSNIExt("a.test"))
	huge := chMsg(1, chCat(chU16(0x0303), make([]byte, 32), chVec8(), chVec16(make([]byte, 65534)),
		chVec8([]byte{0}), chVec16(chExt(21, make([]byte, 2000)))))
	tests := []struct {
		name   string
		data   []byte
		want   error
		detail string // in the error text, for ErrMalformed
	}{
		{name: "garbage", data: []byte("\x00\x01\x02\x03\xff\xfe"), want: ErrNotTLS},
		{name: "HTTP request", data: []byte("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"), want: ErrNotTLS},
		{name: "SSLv2 hello", data: []byte{0x80, 0x2e, 0x01, 0x00, 0x02, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10}, want: ErrSSLv2},
		{name: "alert record first", data: []byte{21, 3, 1, 0, 2, 2, 40}, want: ErrNotTLS},
		{name: "record major version 2", data: []byte{22, 2, 0, 0, 4}, want: ErrNotTLS},
		{name: "record version 3.9", data: []byte{22, 3, 9, 0, 4}, want: ErrNotTLS},
		{name: "record length 0", data: []byte{22, 3, 1, 0, 0}, want: ErrMalformed, detail: "record length 0"},
		{name: "record length 2^14+257", data: []byte{22, 3, 1, 0x41, 0x01, 1}, want: ErrMalformed, detail: "record length 16641"},
		{name: "server_hello", data: chRecords(chMsg(2, body), 1<<14), want: ErrMalformed, detail: "handshake type 2"},
		{name: "server_hello first byte only", data: []byte{22, 3, 1, 0, 100, 2}, want: ErrMalformed, detail: "handshake type 2"},
		{name: "server_hello in 1-byte record", data: []byte{22, 3, 1, 0, 1, 2}, want: ErrMalformed, detail: "handshake type 2"},
		{name: "over 64 KiB", data: chRecords(huge, 1<<14), want: ErrTooLarge},
		{name: "over 64 KiB first record only", data: chRecords(huge, 1<<14)[:1<<14], want: ErrTooLarge},
		{name: "fragmented without scratch", data: chRecords(goMsg, 100), want: ErrNeedScratch},
		{name: "alert between fragments", data: chCat(chRecords(goMsg[:100], 100), []byte{21, 3, 3, 0, 2, 2, 40}, chRecords(goMsg[100:], 1<<14)), want: ErrMalformed, detail: "record type 21"},
		{name: "change_cipher_spec between fragments", data: chCat(chRecords(goMsg[:2], 2), []byte{20, 3, 3, 0, 1, 1}), want: ErrMalformed, detail: "record type 20"},
		{name: "second record empty", data: chCat(chRecords(goMsg[:100], 100), []byte{22, 3, 3, 0, 0}), want: ErrMalformed, detail: "record length 0"},
		{name: "second record version 2.0", data: chCat(chRecords(goMsg[:100], 100), []byte{22, 2, 0, 0, 1, 0}), want: ErrMalformed, detail: "record version 0x0200"},
		{name: "second record version 3.9", data: chCat(chRecords(goMsg[:100], 100), []byte{22, 3, 9, 0, 1, 0}), want: ErrMalformed, detail: "record version 0x0309"},
		{name: "body shorter than random", data: chRecords(chMsg(1, body[:20]), 1<<14), want: ErrMalformed, detail: "too short"},
		{name: "handshake length cuts body", data: chRecords(chMsg(1, body[:len(body)-1]), 1<<14), want: ErrMalformed, detail: "extensions block length"},
		{name: "session id 33 bytes", data: chRecords(chMsg(1, chCat(body[:34], chVec8(make([]byte, 33)), body[67:])), 1<<14), want: ErrMalformed, detail: "legacy_session_id"},
		{name: "session id past body", data: chRecords(chMsg(1, chCat(body[:34], []byte{200})), 1<<14), want: ErrMalformed, detail: "legacy_session_id"},
		{name: "cipher suites odd", data: chRecords(chMsg(1, chCat(body[:67], chVec16([]byte{0x13, 0x01, 0x13}), chVec8([]byte{0}), chVec16())), 1<<14), want: ErrMalformed, detail: "cipher_suites"},
		{name: "cipher suites empty", data: chRecords(chMsg(1, chCat(body[:67], chVec16(), chVec8([]byte{0}), chVec16())), 1<<14), want: ErrMalformed, detail: "cipher_suites"},
		{name: "cipher suites past body", data: chRecords(chMsg(1, chCat(body[:67], chU16(100), chU16(0x1301))), 1<<14), want: ErrMalformed, detail: "cipher_suites"},
		{name: "compression methods empty", data: chRecords(chMsg(1, chCat(body[:67], chVec16(chU16(0x1301)), chVec8(), chVec16())), 1<<14), want: ErrMalformed, detail: "compression"},
		{name: "compression methods missing", data: chRecords(chMsg(1, chCat(body[:67], chVec16(chU16(0x1301)))), 1<<14), want: ErrMalformed, detail: "compression"},
		{name: "extensions block past body", data: chRecords(chMsg(1, chCat(body[:75], chU16(1000), chSNIExt("a.test"))), 1<<14), want: ErrMalformed, detail: "extensions block length"},
		{name: "bytes after extensions block", data: chRecords(chMsg(1, chCat(body, []byte{0})), 1<<14), want: ErrMalformed, detail: "extensions block length"},
		{name: "extensions length 1", data: chRecords(chMsg(1, chCat(body[:75], chVec16([]byte{0}))), 1<<14), want: ErrMalformed, detail: "truncated extension header"},
		{name: "extension data past block", data: chRecords(chMsg(1, chCat(body[:75], chVec16(chU16(0x1234), chU16(10), []byte("abc")))), 1<<14), want: ErrMalformed, detail: "past the extensions block"},
		{name: "duplicate SNI extension", data: chHello(chSNIExt("a.test"), chSNIExt("b.test")), want: ErrMalformed, detail: "duplicate extension 0"},
		{name: "duplicate unknown extension", data: chHello(chExt(0x1234), chALPNExt("h2"), chExt(0x1234)), want: ErrMalformed, detail: "duplicate extension 4660"},
		{name: "duplicate extension after 64", data: chHello(slices.Concat(chManyExts(70), [][]byte{chExt(3)})...), want: ErrMalformed, detail: "duplicate extension"},
		{name: "pre_shared_key not last", data: chHello(chExt(extPreSharedKey, []byte{0}), chSNIExt("a.test")), want: ErrMalformed, detail: "pre_shared_key"},
		{name: "two host_names", data: chHello(chSNIExt("a.test", "b.test")), want: ErrMalformed, detail: "more than one host_name"},
		{name: "SNI empty list", data: chHello(chExt(extServerName, chVec16())), want: ErrMalformed, detail: "server_name list"},
		{name: "SNI empty extension", data: chHello(chExt(extServerName)), want: ErrMalformed, detail: "server_name list"},
		{name: "SNI empty host_name", data: chHello(chSNIExt("")), want: ErrMalformed, detail: "host_name of 0 bytes"},
		{name: "SNI NUL in host_name", data: chHello(chSNIExt("a.test\x00.evil")), want: ErrMalformed, detail: "NUL"},
		{name: "SNI host_name 256 bytes", data: chHello(chSNIExt(strings.Repeat("a", 256))), want: ErrMalformed, detail: "host_name of 256 bytes"},
		{name: "SNI name_type 1", data: chHello(chExt(extServerName, chVec16([]byte{1}, chVec16([]byte("a.test"))))), want: ErrMalformed, detail: "server_name type 1"},
		{name: "SNI list past extension", data: chHello(chExt(extServerName, chU16(20), []byte{0}, chVec16([]byte("a.test")))), want: ErrMalformed, detail: "server_name list"},
		{name: "SNI bytes after list", data: chHello(chExt(extServerName, chVec16([]byte{0}, chVec16([]byte("a.test"))), []byte{0})), want: ErrMalformed, detail: "server_name list"},
		{name: "SNI host_name past list", data: chHello(chExt(extServerName, chVec16([]byte{0}, chU16(9), []byte("a.test")))), want: ErrMalformed, detail: "server_name entry"},
		{name: "ALPN empty list", data: chHello(chExt(extALPN, chVec16())), want: ErrMalformed, detail: "protocol_name_list"},
		{name: "ALPN empty protocol", data: chHello(chALPNExt("h2", "")), want: ErrMalformed, detail: "protocol name length"},
		{name: "ALPN name past list", data: chHello(chExt(extALPN, chVec16([]byte{5}, []byte("h2")))), want: ErrMalformed, detail: "protocol name length"},
		{name: "ALPN bytes after list", data: chHello(chExt(extALPN, chVec16(chVec8([]byte("h2"))), []byte{1})), want: ErrMalformed, detail: "protocol_name_list"},
		{name: "supported_versions odd", data: chHello(chExt(extSupportedVersions, chVec8([]byte{3, 4, 3}))), want: ErrMalformed, detail: "supported_versions"},
		{name: "supported_versions empty", data: chHello(chExt(extSupportedVersions, chVec8())), want: ErrMalformed, detail: "supported_versions"},
		{name: "supported_versions bytes after", data: chHello(chExt(extSupportedVersions, chVec8(chU16(0x0304)), []byte{0})), want: ErrMalformed, detail: "supported_versions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h ClientHello
			scratch := make([]byte, 0, MaxHelloSize)
			if tt.want == ErrNeedScratch {
				scratch = nil
			}
			need, err := ParseRecords(tt.data, scratch, &h)
			if !errors.Is(err, tt.want) || need != 0 {
				t.Fatalf("ParseRecords = %d, %v; want 0, %v", need, err, tt.want)
			}
			if tt.want == ErrMalformed && !strings.Contains(err.Error(), tt.detail) {
				t.Errorf("error %q does not say %q", err, tt.detail)
			}
		})
	}
}

func chManyExts(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = chExt(0x1000 + i)
	}
	out[n-1] = chExt(3) // a repeat of this follows the 64th extension
	return out
}

// TestParseRecordsSplit feeds every prefix of a hello: each must ask for
// more with a need that is past the prefix, never past the whole, and never
// shrinks as the prefix grows.
func TestParseRecordsSplit(t *testing.T) {
	full := chGoClientHello(t, &tls.Config{ServerName: "split.test", NextProtos: []string{"h2"}})
	msg := chUnrecord(full)
	for _, tt := range []struct {
		name string
		data []byte
	}{
		{name: "one record", data: full},
		{name: "1 byte per record", data: chRecords(msg, 1)},
		{name: "100 bytes per record", data: chRecords(msg, 100)},
		{name: "over 16 KiB", data: chHello(chSNIExt("big.test"), chExt(21, make([]byte, 20000)))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			scratch := make([]byte, 0, MaxHelloSize)
			var h ClientHello
			last := 0
			for k := range len(tt.data) {
				need, err := ParseRecords(tt.data[:k], scratch, &h)
				if err != ErrIncomplete || need <= k || need > len(tt.data) || need < last {
					t.Fatalf("prefix %d of %d: need %d, %v; want ErrIncomplete, need in (%d, %d]",
						k, len(tt.data), need, err, max(k, last-1), len(tt.data))
				}
				if want := max(5, len(tt.data)*min(1, k/5)); tt.name == "one record" && need != want {
					t.Fatalf("prefix %d: need %d, want %d", k, need, want)
				}
				last = need
			}
			if need, err := ParseRecords(tt.data, scratch, &h); err != nil || need != 0 {
				t.Fatalf("whole: need %d, %v", need, err)
			}
			for k := range len(msg) {
				if err := ParseHandshake(msg[:k], &h); err != ErrIncomplete {
					t.Fatalf("ParseHandshake prefix %d: %v", k, err)
				}
			}
		})
	}
}

func TestParseRecordsAllocs(t *testing.T) {
	full := chGoClientHello(t, &tls.Config{ServerName: "alloc.test", NextProtos: []string{"h2", "http/1.1"}})
	frag := chRecords(chUnrecord(full), 100)
	msg := chUnrecord(full)
	scratch := make([]byte, 0, MaxHelloSize)
	var h ClientHello
	for _, tt := range []struct {
		name string
		f    func()
	}{
		{name: "single record", f: func() { _, _ = ParseRecords(full, nil, &h) }},
		{name: "fragmented", f: func() { _, _ = ParseRecords(frag, scratch, &h) }},
		{name: "incomplete", f: func() { _, _ = ParseRecords(frag[:len(frag)-1], scratch, &h) }},
		{name: "handshake", f: func() { _ = ParseHandshake(msg, &h) }},
		{name: "accessors", f: func() { _, _, _ = h.ALPN(), h.SupportedVersions(), h.MaxVersion(); _ = h.OffersALPN("h2") }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.f()
			if n := testing.AllocsPerRun(100, tt.f); n != 0 {
				t.Errorf("%v allocs per run, want 0", n)
			}
		})
	}
}
