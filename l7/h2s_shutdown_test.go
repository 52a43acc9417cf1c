package l7

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestH2sShutdownClientRetries: requests racing a graceful Shutdown all
// succeed through x/net's client: the streams the GOAWAY covers are
// served, the others are refused (or past its last stream) and retried
// on a new connection, here to a second server.
func TestH2sShutdownClientRetries(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})
	for round := range 5 {
		f1 := startH2Front(t, h, ServerOptions{})
		f2 := startH2Front(t, h, ServerOptions{})
		var dials atomic.Int32
		tr := h2Client(false)
		tr.DialTLSContext = func(ctx context.Context, network, _ string, _ *tls.Config) (net.Conn, error) {
			addr := f2.plain
			if dials.Add(1) == 1 {
				addr = f1.plain
			}
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}
		cl := &http.Client{Transport: tr, Timeout: 20 * time.Second}
		if resp, err := cl.Get(f1.url(false, "/")); err != nil {
			t.Fatal(err)
		} else {
			resp.Body.Close()
		}
		var wg sync.WaitGroup
		var failed atomic.Int32
		stop := make(chan struct{})
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					resp, err := cl.Get(f1.url(false, "/"))
					if err != nil {
						if failed.Add(1) == 1 {
							t.Errorf("round %d: %v", round, err)
						}
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}()
		}
		time.Sleep(20 * time.Millisecond)
		if err := f1.srv.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
		close(stop)
		wg.Wait()
		tr.CloseIdleConnections()
		if failed.Load() > 0 {
			return
		}
	}
}
