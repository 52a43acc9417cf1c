package quic

import (
	"bytes"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
)

func TestWarnSmallBuffers(t *testing.T) {
	t.Setenv(quicGoBufferWarning, "") // restored after the test
	var out bytes.Buffer
	log := slog.New(slog.NewTextHandler(&out, nil))
	warnSmallBuffers(log, wantBuffer, wantBuffer)
	if out.Len() != 0 || os.Getenv(quicGoBufferWarning) != "" {
		t.Fatalf("warned with large enough buffers: %q", out.String())
	}
	warnSmallBuffers(log, 208<<10, wantBuffer)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "level=WARN") ||
		!strings.Contains(lines[0], "net.core.rmem_max=7340032") || !strings.Contains(lines[0], "receive_kib=208") {
		t.Fatalf("want one warning naming the sysctl and the size, got %q", out.String())
	}
	if os.Getenv(quicGoBufferWarning) != "true" {
		t.Fatal("quic-go's own, unstructured warning is not silenced")
	}
}

func TestCheckBuffersRaisesUDPConn(t *testing.T) {
	t.Setenv(quicGoBufferWarning, "")
	pc := startServerConn(t)
	var out bytes.Buffer
	checkBuffers(pc, slog.New(slog.NewTextHandler(&out, nil)))
	// As root (CI) SO_RCVBUFFORCE lifts the cap: no warning; otherwise the
	// one warning. Never more than one line.
	if n := strings.Count(out.String(), "\n"); n > 1 {
		t.Fatalf("%d log lines: %q", n, out.String())
	}
}

func startServerConn(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
