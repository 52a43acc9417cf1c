package l7

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

// Outbound requests are reused after the HTTP/1 fast path only: many
// concurrent requests, with bodies and without, to an HTTP/1 backend (fast
// path) and an h2c one (x/net's transport), each reach their backend with
// their own path, headers and body, and get their own answer (run with
// -race: a reused outbound still in use is a race).
func TestOutboundReuseKeepsRequestsApart(t *testing.T) {
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s %s %s", r.Proto, r.URL.Path, r.Header.Get("X-Seq"), r.Header.Get("X-Odd"), b)
	})
	_, h1 := backend(t, echo)
	_, h2 := backend(t, h2c.NewHandler(echo, &http2.Server{}).ServeHTTP)
	fr := newFront(t, svcFor(h1, strings.Replace(h2, "http://", "h2c://", 1)))

	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer c.CloseIdleConnections()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				seq := fmt.Sprintf("%d-%d", g, i)
				var body io.Reader
				method := http.MethodGet
				if i%3 == 0 {
					method, body = http.MethodPost, strings.NewReader("body-"+seq)
				}
				req, _ := http.NewRequest(method, fr.url+"/p/"+seq, body)
				req.Header.Set("X-Seq", seq)
				odd := ""
				if i%2 == 1 {
					odd = "odd"
					req.Header.Set("X-Odd", odd) // must not stay for the next
				}
				resp, err := c.Do(req)
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				want := " /p/" + seq + " " + seq + " " + odd + " "
				if method == http.MethodPost {
					want += "body-" + seq
				}
				if !strings.HasSuffix(string(b), want) || !strings.HasPrefix(string(b), "HTTP/") {
					errs <- fmt.Errorf("%s %s: answer %q, want ...%q", method, seq, b, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
