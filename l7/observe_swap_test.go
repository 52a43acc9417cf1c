package l7

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/proxynow/proxynow/upstream/accesslog"
)

// TestObserverLogSwappedInMidRequest: a request in flight when a reload
// turns the access log on is logged when it ends, in the new log, with
// the time it began (not the zero time).
func TestObserverLogSwappedInMidRequest(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
	})
	sw := accesslog.NewSwitch(nil)
	obs := NewObserver(h, "web", nil, nil, sw)
	done := make(chan struct{})
	before := time.Now()
	go func() {
		defer close(done)
		obs.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/slow", nil))
	}()
	<-entered
	var out lockedBuffer
	w := accesslog.New(&out, accesslog.Options{})
	sw.Swap(w)
	time.Sleep(10 * time.Millisecond) // the request lasts past the swap
	close(release)
	<-done
	if err := w.CloseWithin(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	var line struct {
		Time     time.Time
		Path     string
		Duration float64
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out.String())), &line); err != nil {
		t.Fatalf("line %q: %v", out.String(), err)
	}
	if line.Path != "/slow" || line.Duration < 0.01 {
		t.Errorf("line %q, want /slow lasting 10ms or more", out.String())
	}
	if d := line.Time.Sub(before); d < -time.Millisecond || d > 5*time.Millisecond {
		t.Errorf("line's time %v is %v after the request began, want about 0", line.Time, d)
	}
}
