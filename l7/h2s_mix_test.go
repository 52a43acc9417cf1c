package l7

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestH2sConcurrentMix: 50 concurrent streams on one connection mixing
// uploads, downloads, echoes and client cancels; every whole one is
// right, and the connection serves on afterwards.
func TestH2sConcurrentMix(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		switch r.URL.Path {
		case "/up":
			h := sha256.New()
			m, err := io.Copy(h, r.Body)
			fmt.Fprintf(w, "%d %x %v", m, h.Sum(nil), err)
		case "/down":
			chunk := bytes.Repeat([]byte{byte(n)}, 7000)
			for i := 0; i < n; i++ {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		case "/echo":
			io.Copy(w, r.Body)
		case "/hang":
			<-r.Context().Done()
		}
	})
	f := startH2Front(t, h, ServerOptions{})
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			var dials atomic.Int32
			tr := h2Client(useTLS)
			tr.DialTLSContext = func(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
				dials.Add(1)
				var d net.Dialer
				c, err := d.DialContext(ctx, network, addr)
				if err != nil || !useTLS {
					return c, err
				}
				tc := tls.Client(c, cfg)
				return tc, tc.HandshakeContext(ctx)
			}
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr, Timeout: time.Minute}
			base := f.url(useTLS, "")
			var wg sync.WaitGroup
			errs := make(chan error, 50)
			for i := range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- mixOne(cl, base, i)
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
			if err := mixOne(cl, base, 1); err != nil {
				t.Errorf("after the mix: %v", err)
			}
			if n := dials.Load(); n != 1 {
				t.Errorf("%d connections, want 1", n)
			}
		})
	}
}

func mixOne(cl *http.Client, base string, i int) error {
	switch i % 5 {
	case 0: // upload
		body := bytes.Repeat([]byte{byte(i)}, 300000+i*1000)
		resp, err := cl.Post(base+"/up", "x", bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("up %d: %w", i, err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("%d %x <nil>", len(body), sha256.Sum256(body)); err != nil || string(got) != want {
			return fmt.Errorf("up %d: %q %v", i, got, err)
		}
	case 1: // download
		resp, err := cl.Get(base + "/down?n=" + strconv.Itoa(i))
		if err != nil {
			return fmt.Errorf("down %d: %w", i, err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !bytes.Equal(got, bytes.Repeat([]byte{byte(i)}, 7000*i)) {
			return fmt.Errorf("down %d: %d bytes, %v", i, len(got), err)
		}
	case 2: // echo, both ways at once
		body := bytes.Repeat([]byte("echo"), 50000+i)
		resp, err := cl.Post(base+"/echo", "x", bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("echo %d: %w", i, err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !bytes.Equal(got, body) {
			return fmt.Errorf("echo %d: %d bytes, %v", i, len(got), err)
		}
	case 3: // the client cancels a hanging stream
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/hang", nil)
		if resp, err := cl.Do(req); err == nil {
			resp.Body.Close()
			return fmt.Errorf("hang %d: a response", i)
		}
	case 4: // the client cancels a download midway
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/down?n=200", nil)
		resp, err := cl.Do(req)
		if err != nil {
			cancel()
			return fmt.Errorf("cancelled down %d: %w", i, err)
		}
		io.CopyN(io.Discard, resp.Body, 20000)
		cancel()
		resp.Body.Close()
	}
	return nil
}
