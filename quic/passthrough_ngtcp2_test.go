package quic

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// TestDemuxNgtcp2Client: an independent client, ngtcp2's gtlsclient
// (GnuTLS), reaches an HTTP/3 backend through the Demux. gtlsclient 0.12
// sends SNI "localhost" for a numeric host, which the route names.
func TestDemuxNgtcp2Client(t *testing.T) {
	bin, err := exec.LookPath("gtlsclient")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("gtlsclient (Debian ngtcp2-client) is required under CI")
		}
		t.Skip("gtlsclient not installed (Debian ngtcp2-client); required when CI=true")
	}
	ptLeaks(t)
	cert, _ := ptCert(t, "localhost")
	pc := ptUDP(t)
	srv := &http3.Server{
		TLSConfig: http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}}),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("from the h3 backend\n"))
		}),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(pc) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			t.Errorf("backend Serve: %v", err)
		}
	})
	d, addr := ptDemux(t, ptRoutes(t, "localhost", pc.LocalAddr().String()), DemuxOptions{})
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	out, err := exec.CommandContext(ctx, bin, "-q", "--exit-on-first-stream-close", "--timeout=20s",
		"--download="+dir, host, port, "https://localhost/").CombinedOutput()
	if err != nil {
		t.Fatalf("gtlsclient: %v\n%s", err, out)
	}
	body, err := os.ReadFile(filepath.Join(dir, "index.html"))
	if err != nil || string(body) != "from the h3 backend\n" {
		t.Fatalf("downloaded %q, %v; gtlsclient said:\n%s", body, err, out)
	}
	if st := d.Stats(); st.Routed != 1 {
		t.Fatalf("stats %+v", st)
	}
}
