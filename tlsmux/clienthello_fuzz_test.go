package tlsmux

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

// chCorpus is what each real ClientHello in testdata/clienthello says.
// The files are raw record streams captured from the clients named, see
// testdata/clienthello/README.
var chCorpus = map[string]struct {
	sni  string
	alpn []string
}{
	"go-tls13.bin":         {sni: "go.test", alpn: []string{"h2", "http/1.1"}},
	"openssl-s_client.bin": {sni: "a.test", alpn: []string{"h2", "http/1.1"}},
	"curl.bin":             {sni: "a.test", alpn: []string{"h2", "http/1.1"}},
	"utls-chrome.bin":      {sni: "www.example.com", alpn: []string{"h2", "http/1.1"}},
	"utls-firefox.bin":     {sni: "www.example.com", alpn: []string{"h2", "http/1.1"}},
}

// chCorpusFiles returns the .bin files under testdata/clienthello by name.
func chCorpusFiles(tb testing.TB) map[string][]byte {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "clienthello", "*.bin"))
	if err != nil || len(paths) == 0 {
		tb.Fatalf("no ClientHello corpus: %v", err)
	}
	files := make(map[string][]byte, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		files[filepath.Base(p)] = b
	}
	return files
}

func TestParseRecordsCorpus(t *testing.T) {
	for name, data := range chCorpusFiles(t) {
		t.Run(name, func(t *testing.T) {
			want, ok := chCorpus[name]
			if !ok {
				t.Fatalf("no expectation for %s in chCorpus", name)
			}
			h := chMustParse(t, data)
			if string(h.ServerName) != want.sni {
				t.Errorf("ServerName = %q, want %q", h.ServerName, want.sni)
			}
			if got := chALPN(h); !slices.Equal(got, want.alpn) {
				t.Errorf("ALPN = %q, want %q", got, want.alpn)
			}
			// crypto/tls's server must read the same hello.
			info, ok := chStdlibHello(data)
			switch {
			case !ok:
				t.Error("crypto/tls server does not reach GetConfigForClient")
			case info.ServerName != want.sni || !slices.Equal(info.SupportedProtos, want.alpn):
				t.Errorf("crypto/tls server reads %q %q", info.ServerName, info.SupportedProtos)
			case !slices.Equal(info.SupportedVersions, h.SupportedVersions()):
				t.Errorf("SupportedVersions = %#04x, crypto/tls server reads %#04x", h.SupportedVersions(), info.SupportedVersions)
			}
			if h.MaxVersion() != 0x0304 {
				t.Errorf("MaxVersion = %#04x, want 0x0304", h.MaxVersion())
			}
			for _, size := range []int{1, 100} {
				if h2 := chMustParse(t, chRecords(chUnrecord(data), size)); !chSameHello(h, h2) {
					t.Errorf("%d-byte records: %+v, want %+v", size, *h2, *h)
				}
			}
		})
	}
}

// chWithin reports whether s lies inside b[:cap(b)].
func chWithin(s, b []byte) bool {
	if cap(b) == 0 {
		return false
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	return p >= lo && p+uintptr(len(s)) <= lo+uintptr(cap(b))
}

type chResult struct {
	need int
	err  string
	h    ClientHello
}

func FuzzParseRecords(f *testing.F) {
	for _, data := range chCorpusFiles(f) {
		msg := chUnrecord(data)
		f.Add(data)
		f.Add(chRecords(msg, 100))
		// Prefixes only: large seeds make each new input slow to minimize.
		f.Add(chRecords(msg, 1)[:300])
		f.Add(chRecords(msg, 3)[:200])
		f.Add(data[:len(data)/2])
		f.Add(msg) // no record layer
	}
	f.Add(chRecords(chMsg(1, chBody(chSNIExt("f.test"), chALPNExt("h2"))), 1))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte{0x80, 0x2e, 0x01, 0x00, 0x02})
	scratch := make([]byte, 0, MaxHelloSize)
	parse := func(data []byte) chResult {
		var r chResult
		var err error
		r.need, err = ParseRecords(data, scratch, &r.h)
		if err != nil {
			r.err = err.Error()
		}
		return r
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var h ClientHello
		_ = ParseHandshake(data, &h)
		_ = h.MaxVersion()

		// Parse a copy so that data cannot alias what scratch holds.
		data = bytes.Clone(data)
		r := parse(data)
		if (r.err == ErrIncomplete.Error()) != (r.need > 0) || r.need < 0 || r.err == ErrIncomplete.Error() && r.need <= len(data) {
			t.Fatalf("need %d with %q for %d bytes", r.need, r.err, len(data))
		}
		if r2 := parse(data); !chSameResult(&r, &r2) {
			t.Fatalf("second parse differs: %+v, first %+v", r2, r)
		}
		if r.err != "" {
			return
		}
		sn := r.h.ServerName
		if sn != nil && !chWithin(sn, data) && !chWithin(sn, scratch) {
			t.Fatal("ServerName outside data and scratch")
		}
		for _, p := range r.h.ALPN() {
			if !chWithin(p, data) && !chWithin(p, scratch) {
				t.Fatal("ALPN name outside data and scratch")
			}
		}
		if len(sn) == 0 && sn != nil || len(sn) > 255 || bytes.IndexByte(sn, 0) >= 0 {
			t.Fatalf("ServerName %q", sn)
		}
		extra := append(bytes.Clone(data), "\x16\x03\x01\x00\x00garbage"...)
		if r2 := parse(extra); !chSameResult(&r, &r2) {
			t.Fatalf("with bytes appended: %+v, want %+v", r2, r)
		}
	})
}

// chSameResult compares two parses by value; their slices may live in
// different buffers.
func chSameResult(a, b *chResult) bool {
	return a.need == b.need && a.err == b.err && chSameHello(&a.h, &b.h)
}

func BenchmarkParseRecords(b *testing.B) {
	files := chCorpusFiles(b)
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	scratch := make([]byte, 0, MaxHelloSize)
	for _, name := range names {
		data := files[name]
		for _, v := range []struct {
			name string
			data []byte
		}{
			{name: strings.TrimSuffix(name, ".bin"), data: data},
			{name: strings.TrimSuffix(name, ".bin") + "/100-byte-records", data: chRecords(chUnrecord(data), 100)},
		} {
			b.Run(v.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(v.data)))
				var h ClientHello
				for b.Loop() {
					if _, err := ParseRecords(v.data, scratch, &h); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
