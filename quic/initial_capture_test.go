package quic

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	quicgo "github.com/quic-go/quic-go"
)

// The seed corpus of real client Initials is regenerated with
//
//	go test -run TestCapture -capture ./quic
//
// which points quic-go's client and ngtcp2's gtlsclient at a UDP socket
// that records their first flight and never answers.
var captureFlag = flag.Bool("capture", false, "regenerate testdata/initials from real QUIC clients")

// initialCaptures names each recorded first flight and how to start its client.
var initialCaptures = []struct {
	file string
	sni  string
	dial func(ctx context.Context, addr string, sni string) error
}{
	{"quic-go-v1.hex", "quic-go.test", captureQuicGo(quicgo.Version1)},
	{"quic-go-v2.hex", "quic-go-v2.test", captureQuicGo(quicgo.Version2)},
	// gtlsclient 0.12 (Debian 12) sends SNI "localhost" for a numeric host
	// whatever --sni says, and knows only draft versions of v2.
	{"ngtcp2-gnutls-v1.hex", "localhost", captureGtlsclient("v1")},
}

func captureQuicGo(v quicgo.Version) func(context.Context, string, string) error {
	return func(ctx context.Context, addr, sni string) error {
		conn, err := quicgo.DialAddr(ctx, addr,
			&tls.Config{ServerName: sni, NextProtos: []string{"h3"}},
			&quicgo.Config{Versions: []quicgo.Version{v}})
		if err == nil {
			conn.CloseWithError(0, "")
		}
		return err
	}
}

func captureGtlsclient(version string) func(context.Context, string, string) error {
	return func(ctx context.Context, addr, sni string) error {
		host, port, _ := net.SplitHostPort(addr)
		cmd := exec.CommandContext(ctx, "gtlsclient", "-q", "--exit-on-first-stream-close",
			"-v", version, "--sni="+sni, host, port, "https://"+sni+"/")
		return cmd.Run()
	}
}

func TestCapture(t *testing.T) {
	if !*captureFlag {
		t.Skip("regenerates testdata/initials; run with -capture")
	}
	for _, c := range initialCaptures {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
		errc := make(chan error, 1)
		go func() { errc <- c.dial(ctx, pc.LocalAddr().String(), c.sni) }()
		// The first flight; retransmissions after the PTO are left out.
		var lines []string
		for {
			_ = pc.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
			buf := make([]byte, 65535)
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				break
			}
			lines = append(lines, hex.EncodeToString(buf[:n]))
		}
		cancel()
		<-errc
		pc.Close()
		if len(lines) == 0 {
			t.Fatalf("%s: no datagram recorded", c.file)
		}
		head := fmt.Sprintf("# first flight of a client with SNI %s, one datagram per line (go test -run TestCapture -capture)\n", c.sni)
		path := filepath.Join("testdata", "initials", c.file)
		if err := os.WriteFile(path, []byte(head+strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d datagrams", path, len(lines))
	}
}

// TestCapturedInitials reads the hello of each recorded first flight, and
// the same datagrams in reverse order.
func TestCapturedInitials(t *testing.T) {
	for _, c := range initialCaptures {
		t.Run(c.file, func(t *testing.T) {
			dgrams := readHex(t, filepath.Join("testdata", "initials", c.file))
			for _, order := range []string{"in order", "reversed"} {
				var col Collector
				done := false
				var err error
				for i := range dgrams {
					d := dgrams[i]
					if order == "reversed" {
						d = dgrams[len(dgrams)-1-i]
					}
					if done, err = col.Add(d); err != nil && !errors.Is(err, ErrNotInitial) {
						t.Fatalf("%s: datagram %d: %v", order, i, err)
					}
				}
				if !done {
					t.Fatalf("%s: hello not complete after %d datagrams", order, len(dgrams))
				}
				if h := col.Hello(); string(h.ServerName) != c.sni || !h.OffersALPN("h3") {
					t.Fatalf("%s: SNI %q ALPN %q", order, h.ServerName, h.ALPN())
				}
				t.Logf("%s: %d Initial packets, version %#x, %d-byte DCID", order, col.Packets(), col.Version(), len(col.DCID()))
			}
		})
	}
}

// multiPacketCapture is the captureFlag whose hello spans several Initial
// packets (quic-go's default X25519MLKEM768 key share).
const multiPacketCapture = "quic-go-v1.hex"

func TestCapturedMultiPacketHello(t *testing.T) {
	dgrams := readHex(t, filepath.Join("testdata", "initials", multiPacketCapture))
	var c Collector
	for _, d := range dgrams {
		if done, _ := c.Add(d); done {
			break
		}
	}
	if c.Packets() < 2 {
		t.Fatalf("%s: hello in %d Initial packet(s), want a multi-packet hello in the corpus", multiPacketCapture, c.Packets())
	}
}
