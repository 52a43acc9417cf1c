package quic

import (
	"bytes"
	"encoding/binary"
	"errors"
	"path/filepath"
	"testing"
)

// frameDatagrams joins datagrams as the fuzz input: each one prefixed by
// its 2-byte length.
func frameDatagrams(dgrams ...[]byte) []byte {
	var b []byte
	for _, d := range dgrams {
		b = binary.BigEndian.AppendUint16(b, uint16(len(d)))
		b = append(b, d...)
	}
	return b
}

func splitDatagrams(b []byte) [][]byte {
	var out [][]byte
	for len(b) >= 2 {
		n := min(int(binary.BigEndian.Uint16(b)), len(b)-2)
		out = append(out, b[2:2+n])
		b = b[2+n:]
	}
	return out
}

// FuzzCollector feeds datagram sequences to a Collector. The seeds are real
// first flights (testdata/initials, from quic-go and ngtcp2 clients), the
// RFC vectors, and the same flights reordered, so mutations start from
// deep inside the decryption and reassembly paths.
func FuzzCollector(f *testing.F) {
	files, _ := filepath.Glob("testdata/initials/*.hex")
	files = append(files, "testdata/rfc9001-a2-client-initial.hex", "testdata/rfc9369-a2-client-initial.hex")
	for _, file := range files {
		d := readHex(f, file)
		f.Add(frameDatagrams(d...))
		if len(d) > 1 {
			r := make([][]byte, len(d))
			for i := range d {
				r[i] = d[len(d)-1-i]
			}
			f.Add(frameDatagrams(r...))
			f.Add(frameDatagrams(bytes.Join(d, nil))) // coalesced
		}
	}
	hello := buildHello("p.test", []string{"h3"}, 300)
	f.Add(frameDatagrams(
		sealInitial(f, initialSpec{dcid: dcidA, pn: 1, payload: cryptoFrame(100, hello[100:])}),
		sealInitial(f, initialSpec{dcid: dcidA, pn: 0, payload: cryptoFrame(0, hello[:120])})))
	f.Fuzz(func(t *testing.T, in []byte) {
		dgrams := splitDatagrams(in)
		orig := bytes.Clone(in)
		var c Collector
		done, err := feedCollector(&c, dgrams)
		if !bytes.Equal(in, orig) {
			t.Fatal("Add modified its input")
		}
		if done != (c.Hello() != nil) {
			t.Fatalf("done %v but Hello %v", done, c.Hello())
		}
		if done && err != nil {
			t.Fatalf("done with error %v", err)
		}
		// A reset Collector is a fresh one.
		c.Reset()
		done2, err2 := feedCollector(&c, dgrams)
		if done2 != done || (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() {
			t.Fatalf("after Reset: %v, %v; first run %v, %v", done2, err2, done, err)
		}
	})
}

// feedCollector adds every datagram and returns the last answer; fatal errors stop.
func feedCollector(c *Collector, dgrams [][]byte) (bool, error) {
	var done bool
	var err error
	for _, d := range dgrams {
		done, err = c.Add(d)
		if c.Err() != nil && !errors.Is(err, c.Err()) {
			panic("fatal error not repeated")
		}
	}
	return done, err
}

func BenchmarkCollector(b *testing.B) {
	dgrams := readHex(b, filepath.Join("testdata", "initials", multiPacketCapture))
	var c Collector
	b.Run("reused", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.Reset()
			for _, d := range dgrams {
				if _, err := c.Add(d); err != nil {
					b.Fatal(err)
				}
			}
			if c.Hello() == nil {
				b.Fatal("no hello")
			}
		}
	})
	// A new connection's keys: what each new client costs.
	b.Run("new-keys", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.Reset()
			c.keys.ok = false
			for _, d := range dgrams {
				if _, err := c.Add(d); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
