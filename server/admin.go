package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/proxynow/proxynow/config"
	"github.com/proxynow/proxynow/l7/middleware"
)

// ReloadFunc reloads the configuration. For a configuration that does not
// load it returns the diagnostics (file:line:col each) and an error, and
// changes nothing.
type ReloadFunc func(ctx context.Context) (config.Diagnostics, error)

// admin is the admin endpoint: /metrics, /healthz, /readyz, /config,
// /upstreams, POST /reload and, when enabled, /debug/pprof/.
type admin struct {
	cfg    *config.Admin
	srv    *http.Server
	reload atomic.Pointer[ReloadFunc]
	addr   net.Addr
	mu     sync.Mutex
	done   chan struct{} // closed when Serve returned; nil before start
}

// adminTimeouts bound what an admin client can hold open. There is no
// write timeout: /debug/pprof/profile streams for as long as asked.
const (
	adminReadHeaderTimeout = 10 * time.Second
	adminIdleTimeout       = 60 * time.Second
	adminMaxHeaderBytes    = 64 << 10
)

func newAdmin(s *Server, c *config.Admin) (*admin, error) {
	a := &admin{cfg: c}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{
		EnableOpenMetrics: true,
		Registry:          s.metrics.Registry, // promhttp_metric_handler_errors_total
		ErrorLog:          log.New(slogWriter{s}, "", 0),
		Timeout:           30 * time.Second,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.serveReady)
	mux.HandleFunc("GET /config", s.serveConfig)
	mux.HandleFunc("GET /upstreams", s.serveUpstreams)
	mux.HandleFunc("POST /reload", a.serveReload)
	if c.Pprof {
		if runtime.MemProfileRate == 0 {
			// cmd/proxynow turns sampling off unless profiles are served;
			// heap and allocs profiles show what is allocated from now on.
			runtime.MemProfileRate = 512 * 1024
		}
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	var h http.Handler = mux
	if ba := c.BasicAuth; ba != nil {
		// The same verification as the basic_auth middleware: bcrypt or
		// SHA-256 crypt, timing-safe for unknown users, cached successes.
		mw, err := middleware.Build(&config.Middleware{
			Name: "admin", Kind: config.MWBasicAuth,
			BasicAuth: &config.BasicAuth{Users: ba.Users, Realm: ba.Realm, StripHeader: true},
		}, middleware.Env{Logger: s.log})
		if err != nil {
			return nil, fmt.Errorf("admin: %w", err)
		}
		h = mw(mux)
	}
	a.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: adminReadHeaderTimeout,
		IdleTimeout:       adminIdleTimeout,
		MaxHeaderBytes:    adminMaxHeaderBytes,
		ErrorLog:          log.New(slogWriter{s}, "", 0),
	}
	return a, nil
}

// slogWriter sends the admin server's own log lines to the server's logger.
type slogWriter struct{ s *Server }

func (w slogWriter) Write(b []byte) (int, error) {
	w.s.log.Warn("admin: " + string(b))
	return len(b), nil
}

// SetReload wires POST /reload. Until it is, /reload answers 503.
func (s *Server) SetReload(f ReloadFunc) {
	if s.admin != nil && f != nil {
		s.admin.reload.Store(&f)
	}
}

// AdminAddr is the admin endpoint's bound address, or nil.
func (s *Server) AdminAddr() net.Addr {
	if s.admin == nil {
		return nil
	}
	s.admin.mu.Lock()
	defer s.admin.mu.Unlock()
	return s.admin.addr
}

// startAdmin binds the admin endpoint (when configured) and marks the
// server ready: every listener is bound.
func (s *Server) startAdmin() error {
	s.ready.Store(true)
	a := s.admin
	if a == nil {
		return nil
	}
	ln, err := net.Listen("tcp", a.cfg.Address)
	if err != nil {
		s.ready.Store(false)
		return fmt.Errorf("admin: %w", err)
	}
	a.mu.Lock()
	a.addr = ln.Addr()
	a.done = make(chan struct{})
	a.mu.Unlock()
	go func() {
		defer close(a.done)
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin endpoint stopped", "error", err)
		}
	}()
	s.log.Info("admin listening", "address", ln.Addr().String(), "pprof", a.cfg.Pprof)
	return nil
}

// shutdown lets admin requests finish until ctx is done, then closes them.
func (a *admin) shutdown(ctx context.Context) error {
	a.mu.Lock()
	done := a.done
	a.mu.Unlock()
	if done == nil {
		return nil
	}
	err := a.srv.Shutdown(ctx)
	if err != nil {
		_ = a.srv.Close()
	}
	<-done
	return err
}

func (s *Server) serveReady(w http.ResponseWriter, _ *http.Request) {
	type ep struct {
		Name    string `json:"name"`
		Network string `json:"network"`
		Address string `json:"address,omitempty"` // bound address; empty until bound
	}
	out := struct {
		Ready       bool   `json:"ready"`
		Reason      string `json:"reason,omitempty"`
		Entrypoints []ep   `json:"entrypoints"`
	}{Ready: s.ready.Load() && !s.draining.Load(), Entrypoints: []ep{}}
	for _, e := range s.cur.Load().eps {
		x := ep{Name: e.cfg.Name, Network: e.ln.network()}
		if s.ready.Load() && e.ln.addr != nil {
			x.Address = e.ln.addr.String()
		}
		out.Entrypoints = append(out.Entrypoints, x)
	}
	code := http.StatusOK
	switch {
	case s.draining.Load():
		out.Reason, code = "shutting down", http.StatusServiceUnavailable
	case !out.Ready:
		out.Reason, code = "listeners not bound yet", http.StatusServiceUnavailable
	}
	writeJSON(w, code, out)
}

func (s *Server) serveUpstreams(w http.ResponseWriter, _ *http.Request) {
	out := struct {
		Services []any `json:"services"`
	}{Services: []any{}}
	g := s.cur.Load()
	for _, svc := range g.cfg.Services {
		if e := g.services[svc.Name]; e != nil && e.pool != nil {
			out.Services = append(out.Services, e.pool.State())
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) serveConfig(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, durationsAsText(redactConfig(s.cur.Load().cfg)))
}

func (a *admin) serveReload(w http.ResponseWriter, r *http.Request) {
	f := a.reload.Load()
	if f == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "reload not available"})
		return
	}
	diags, err := (*f)(r.Context())
	if err != nil {
		type diag struct {
			Position string `json:"position"`
			Message  string `json:"message"`
		}
		out := struct {
			Error       string `json:"error"`
			Diagnostics []diag `json:"diagnostics"`
		}{Error: err.Error(), Diagnostics: []diag{}}
		for _, d := range diags {
			out.Diagnostics = append(out.Diagnostics, diag{Position: d.Pos.String(), Message: d.Message})
		}
		code := http.StatusInternalServerError
		if len(diags) > 0 {
			code = http.StatusBadRequest
		}
		writeJSON(w, code, out)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "reloaded"})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // "<redacted>" reads as such; the type is JSON, not HTML
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		http.Error(w, `{"error":"encoding failed"}`, http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}
