//go:build linux

package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/template"
	"time"
)

// routeKind is what a scenario asks every target to proxy; a target that
// does not know a kind says so through supports and is skipped for that
// scenario. Adding a scenario of a new kind: a constant here, one template
// branch per target (and its supports), one entry in scenarios.
type routeKind string

const (
	kindTCP          routeKind = "tcp"           // plain TCP to a TCP backend
	kindUDP          routeKind = "udp"           // UDP datagrams to a UDP backend
	kindTLSTerminate routeKind = "tls-terminate" // TLS 1.3 terminated, plaintext to a TCP backend
	kindHTTP         routeKind = "http"          // HTTP/1.1 reverse proxy to an HTTP/1.1 backend, keep-alive upstream
	kindHTTPS        routeKind = "https"         // the same behind TLS 1.3 with ALPN h2 and http/1.1
	// kindHTTPSStatic is kindHTTPS answered by the target itself with the
	// backend's 13-byte body, no backend: the cost of the HTTP/2 server
	// alone, without the proxying.
	kindHTTPSStatic routeKind = "https-static"
	kindH3          routeKind = "h3"        // https plus HTTP/3 on the same UDP port (load_h3.go)
	kindQUICPass    routeKind = "quic-pass" // QUIC relayed by SNI, untouched, to a UDP backend (load_quicpass.go)
	// kindHTTPRouting is kindHTTP behind routeHosts × routePaths routes
	// (load_routing.go); other requests get 404.
	kindHTTPRouting routeKind = "http-routing"
)

func (k routeKind) isHTTP() bool {
	return k == kindHTTP || k == kindHTTPS || k == kindHTTPRouting || k == kindHTTPSStatic
}

// route is one listener of a target and where it forwards.
type route struct {
	Kind    routeKind
	Listen  string // 127.0.0.1:PORT
	Backend string // 127.0.0.1:PORT
}

// env is what every target's start needs.
type env struct {
	dir      string // temp dir: configs, logs, binaries
	proxynow string // the built proxynow binary
	cert     certFiles
}

// target is one proxy under test (or "direct", the backend itself).
type target interface {
	name() string
	// check says why the target cannot run on this machine; nil if it can.
	check() error
	supports(k routeKind) bool
	// start launches the target proxying r from a config generated into
	// dir and returns once it answers on r.Listen. Direct returns nil.
	start(e *env, dir string, r route) (*proc, error)
}

// directName is the target that bypasses every proxy.
const directName = "direct"

var allTargets = []target{proxynowTarget{}, proxynowUDPTarget{}, nginxTarget{}, haproxyTarget{}, caddyTarget{}, directTarget{}}

func readiness(p *proc, r route) error {
	probe := tcpProbe(r.Listen)
	switch {
	case r.Kind == kindUDP:
		probe = udpEchoProbe(r.Listen)
	case r.Kind == kindH3:
		probe = h3Probe(r.Listen)
	case r.Kind == kindQUICPass:
		probe = quicPassProbe(r.Listen)
	case r.Kind == kindHTTPRouting:
		probe = routingProbe(r.Listen)
	case r.Kind.isHTTP():
		// A proxied GET / that reaches the backend: the listener alone
		// may be up before the routes are.
		probe = httpProbe(r.Listen, r.Kind == kindHTTPS || r.Kind == kindHTTPSStatic)
	}
	if err := p.waitReady(15*time.Second, probe); err != nil {
		p.stop()
		return err
	}
	return nil
}

func render(dir, name, text string, data any) (string, error) {
	t, err := template.New(name).Parse(text)
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	if err := t.Execute(&sb, data); err != nil {
		return "", err
	}
	path := filepath.Join(dir, name)
	return path, os.WriteFile(path, []byte(sb.String()), 0o644)
}

type tmplData struct {
	R    route
	UDP  bool
	TLS  bool // TLS 1.3 terminated on the listener (tls-terminate and https)
	HTTP bool // an HTTP reverse proxy (http and https)
	H3   bool // HTTP/3 too (h3)
	// QUICPass: an http3 entrypoint whose quic_route for quicPassSNI
	// relays to the UDP backend (quic-pass).
	QUICPass bool
	PassSNI  string
	Cert     certFiles
	Dir      string
	// Routing: route Routes (kindHTTPRouting) instead of everything.
	Routing bool
	Routes  routeTable
	// Static: answer every request with Body (text/plain) from the target
	// itself (kindHTTPSStatic).
	Static bool
	Body   string
}

func data(e *env, dir string, r route) tmplData {
	d := tmplData{R: r, UDP: r.Kind == kindUDP, TLS: r.Kind == kindTLSTerminate || r.Kind == kindHTTPS || r.Kind == kindH3 || r.Kind == kindHTTPSStatic,
		HTTP: r.Kind.isHTTP() || r.Kind == kindH3, H3: r.Kind == kindH3, Cert: e.cert, Dir: dir, Routing: r.Kind == kindHTTPRouting,
		QUICPass: r.Kind == kindQUICPass, PassSNI: quicPassSNI, Static: r.Kind == kindHTTPSStatic, Body: httpBody}
	if d.QUICPass {
		d.TLS = true
	}
	if d.Routing {
		d.Routes = newRouteTable()
	}
	return d
}

// ---------------------------------------------------------------------------
// proxynow

type proxynowTarget struct{}

func (proxynowTarget) name() string { return "proxynow" }
func (proxynowTarget) check() error { return nil }
func (proxynowTarget) supports(k routeKind) bool {
	return k == kindTCP || k == kindUDP || k == kindTLSTerminate || k.isHTTP() || k == kindH3 || k == kindQUICPass
}

// Logging at "error": proxynow has no access log; this keeps per-connection
// debug and info lines out, as access logs are off for every target. An
// HTTP route makes the entrypoint serve HTTP/1.1 and h2c, and, with the tls
// block, HTTP/1.1 and HTTP/2 by ALPN on TLS connections; the service's
// keep-alive pool defaults to 256 idle connections per backend.
const proxynowConf = `log {
  level = "error"
}
entrypoint "bench" {
  address = "{{.R.Listen}}"
{{- if or .H3 .QUICPass}}
  http3   = true
{{- end}}
{{- if .HTTP}}
  max_connections = 12000
{{- else if .UDP}}
  network   = "udp"
  max_flows = 4000
{{- else}}
  max_connections = 4000
{{- end}}
}
{{- if .TLS}}
tls {
  min_version = "1.3"
  certificate "bench" {
    cert_file = "{{.Cert.Cert}}"
    key_file  = "{{.Cert.Key}}"
    default   = true
  }
}
{{- end}}
{{- if .QUICPass}}
quic_route "bench" {
  entrypoints = ["bench"]
  sni         = ["{{.PassSNI}}"]
  service     = "backend"
}
service "backend" {
  backend "{{.R.Backend}}" {}
}
# http3 needs an http_route; the load sends no HTTP request, so its backend
# is never dialled.
http_route "local" {
  entrypoints = ["bench"]
  service     = "unused"
}
service "unused" {
  backend "http://127.0.0.1:9" {}
}
{{- else if .HTTP}}
{{- if .Routing}}
{{- range $i, $h := .Routes.Hosts}}{{range $j, $p := $.Routes.Paths}}
http_route "r{{$i}}_{{$j}}" {
  entrypoints = ["bench"]
  hosts       = ["{{$h}}"]
  path_prefix = "{{$p}}"
  service     = "backend"
}
{{- end}}{{end}}
{{- else}}
http_route "bench" {
  entrypoints = ["bench"]
  service     = "backend"
}
{{- end}}
service "backend" {
{{- if .Static}}
  respond {
    body    = "{{.Body}}"
    headers = { "Content-Type" = "text/plain" }
  }
{{- else}}
  backend "http://{{.R.Backend}}" {}
{{- end}}
}
{{- else}}
{{if .UDP}}udp_route{{else}}tcp_route{{end}} "bench" {
  entrypoints = ["bench"]
  service     = "backend"
{{- if .TLS}}
  tls         = "terminate"
{{- end}}
}
service "backend" {
  backend "{{.R.Backend}}" {}
}
{{- end}}
`

func (t proxynowTarget) start(e *env, dir string, r route) (*proc, error) {
	return startProxynow(e.proxynow, dir, r, e, "proxynow", nil)
}

// startProxynow runs bin (the plain build, or the profiling one) with one
// core's worth of Go scheduler.
func startProxynow(bin, dir string, r route, e *env, name string, extraEnv []string) (*proc, error) {
	conf, err := render(dir, name+".hcl", proxynowConf, data(e, dir, r))
	if err != nil {
		return nil, err
	}
	p, err := startProc(dir, name, append([]string{"GOMAXPROCS=1"}, extraEnv...), bin, "run", "-config", conf)
	if err != nil {
		return nil, err
	}
	return p, readiness(p, r)
}

// ---------------------------------------------------------------------------
// proxynow-udp: proxynow's plain udp_route under the quic-pass load, the
// baseline issue 6 compares QUIC passthrough with (target ≥ 0.8×).

type proxynowUDPTarget struct{}

func (proxynowUDPTarget) name() string              { return "proxynow-udp" }
func (proxynowUDPTarget) check() error              { return nil }
func (proxynowUDPTarget) supports(k routeKind) bool { return k == kindQUICPass }
func (proxynowUDPTarget) start(e *env, dir string, r route) (*proc, error) {
	r.Kind = kindUDP
	return startProxynow(e.proxynow, dir, r, e, "proxynow-udp", nil)
}

// ---------------------------------------------------------------------------
// nginx (stream module)

type nginxTarget struct{}

const nginxStreamModule = "/usr/lib/nginx/modules/ngx_stream_module.so"

func (nginxTarget) name() string { return "nginx" }
func (nginxTarget) check() error {
	if _, err := exec.LookPath("nginx"); err != nil {
		return errors.New("nginx not installed (Debian: apt-get install nginx libnginx-mod-stream)")
	}
	if _, err := os.Stat(nginxStreamModule); err != nil {
		return errors.New("nginx stream module missing (Debian: apt-get install libnginx-mod-stream)")
	}
	return nil
}
func (nginxTarget) supports(k routeKind) bool {
	return k == kindTCP || k == kindUDP || k == kindTLSTerminate || k.isHTTP()
}

// One worker, no access log (the stream module logs only when told to),
// TLS 1.3 only, no session cache (the clients never resume). Session
// tickets stay at their default, as they do for the other targets.
const nginxConf = `daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 16384;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/nginx-error.log warn;
load_module ` + nginxStreamModule + `;
events {
  worker_connections 8000;
}
stream {
  access_log off;
  server {
    listen {{.R.Listen}}{{if .UDP}} udp{{end}}{{if .TLS}} ssl{{end}};
    proxy_pass {{.R.Backend}};
    proxy_connect_timeout 5s;
    proxy_timeout 30s;
{{- if .TLS}}
    ssl_certificate     {{.Cert.Cert}};
    ssl_certificate_key {{.Cert.Key}};
    ssl_protocols TLSv1.3;
    ssl_session_cache off;
{{- end}}
  }
}
`

// The http module: one worker, access log off, keep-alive to the backend
// (a pool of 64 idle connections, HTTP/1.1, Connection cleared), no cap on
// requests per connection (nginx closes after 1000 by default, which the
// other targets do not), X-Forwarded-For added as the other proxies add
// theirs, temp paths inside dir. HTTP/2 on the TLS listener ("listen ...
// http2": nginx 1.22 predates the "http2 on" directive).
const nginxHTTPConf = `daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 16384;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/nginx-error.log warn;
events {
  worker_connections 12000;
}
http {
  access_log off;
  client_body_temp_path {{.Dir}}/client_body;
  proxy_temp_path       {{.Dir}}/proxy;
  fastcgi_temp_path     {{.Dir}}/fastcgi;
  uwsgi_temp_path       {{.Dir}}/uwsgi;
  scgi_temp_path        {{.Dir}}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  upstream backend {
    server {{.R.Backend}};
    keepalive 64;
    keepalive_requests 1000000;
  }
{{- if .Routing}}
  server_names_hash_max_size 4096;
  server_names_hash_bucket_size 64;
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
  server {
    listen {{.R.Listen}} default_server;
    return 404;
  }
{{- range .Routes.Hosts}}
  server {
    listen {{$.R.Listen}};
    server_name {{.}};
{{- range $.Routes.Paths}}
    location {{.}} { proxy_pass http://backend; }
{{- end}}
  }
{{- end}}
{{- else}}
  server {
    listen {{.R.Listen}}{{if .TLS}} ssl http2{{end}};
{{- if .TLS}}
    ssl_certificate     {{.Cert.Cert}};
    ssl_certificate_key {{.Cert.Key}};
    ssl_protocols TLSv1.3;
    ssl_session_cache off;
{{- end}}
    location / {
{{- if .Static}}
      default_type text/plain;
      return 200 "{{.Body}}";
{{- else}}
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
{{- end}}
    }
  }
{{- end}}
}
`

func (nginxTarget) start(e *env, dir string, r route) (*proc, error) {
	tmpl := nginxConf
	if r.Kind.isHTTP() {
		tmpl = nginxHTTPConf
	}
	conf, err := render(dir, "nginx.conf", tmpl, data(e, dir, r))
	if err != nil {
		return nil, err
	}
	p, err := startProc(dir, "nginx", nil, "nginx", "-p", dir, "-e", filepath.Join(dir, "nginx-error.log"), "-c", conf)
	if err != nil {
		return nil, err
	}
	return p, readiness(p, r)
}

// ---------------------------------------------------------------------------
// HAProxy (mode tcp; no UDP proxying in HAProxy)

type haproxyTarget struct{}

func (haproxyTarget) name() string { return "haproxy" }
func (haproxyTarget) check() error {
	if _, err := exec.LookPath("haproxy"); err != nil {
		return errors.New("haproxy not installed (Debian: apt-get install haproxy)")
	}
	return nil
}
func (haproxyTarget) supports(k routeKind) bool {
	return k == kindTCP || k == kindTLSTerminate || k.isHTTP()
}

// hardNoFile is the hard open-file limit HAProxy may raise its own to. It
// reserves two descriptors per connection (client and server side) and
// refuses to start when it cannot (strict-limits); the idle connections
// of scenario 8 share a few server connections, so 11,000 of them fit in
// 20,000 descriptors: the config sets ulimit-n to the hard limit and turns
// strict-limits off.
func hardNoFile() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Max > 1<<30 {
		return 0
	}
	return lim.Max
}

// haproxySplice is whether this haproxy was built with splice support; the
// config asks for it only then.
func haproxySplice() bool {
	out, err := exec.Command("haproxy", "-vv").CombinedOutput()
	return err == nil && strings.Contains(string(out), "+LINUX_SPLICE")
}

// One thread, no log (no "log" line anywhere), TLS 1.3 only.
const haproxyConf = `global
  nbthread 1
  maxconn 4000
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
{{- if .Splice}}
  option splice-auto
{{- end}}
frontend bench
  bind {{.R.Listen}}{{if .TLS}} ssl crt {{.Cert.Combined}} ssl-min-ver TLSv1.3{{end}}
  default_backend backend
backend backend
  server s1 {{.R.Backend}}
`

// mode http: keep-alive on both sides (the default), idle server
// connections shared by every client (http-reuse always), X-Forwarded-For
// added, h2 and http/1.1 by ALPN on the TLS bind, no log.
const haproxyHTTPConf = `global
  nbthread 1
  maxconn 11000
{{- if .NoFile}}
  ulimit-n {{.NoFile}}
  no strict-limits
{{- end}}
defaults
  mode http
  maxconn 11000
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 75s
  option forwardfor
  http-reuse always
frontend bench
  bind {{.R.Listen}}{{if .TLS}} ssl crt {{.Cert.Combined}} alpn h2,http/1.1 ssl-min-ver TLSv1.3{{end}}
{{- if .RouteMap}}
  http-request deny deny_status 404 unless { base,map_beg({{.RouteMap}}) -m found }
{{- end}}
{{- if .Static}}
  http-request return status 200 content-type text/plain string "{{.Body}}"
{{- end}}
  default_backend backend
backend backend
  http-reuse always
  server s1 {{.R.Backend}}
`

func (haproxyTarget) start(e *env, dir string, r route) (*proc, error) {
	d := struct {
		tmplData
		Splice   bool
		RouteMap string
		NoFile   uint64
	}{tmplData: data(e, dir, r), Splice: haproxySplice(), NoFile: hardNoFile()}
	if d.Routing {
		var err error
		if d.RouteMap, err = writeRouteMap(dir, d.Routes); err != nil {
			return nil, err
		}
	}
	tmpl := haproxyConf
	if r.Kind.isHTTP() {
		tmpl = haproxyHTTPConf
	}
	conf, err := render(dir, "haproxy.cfg", tmpl, d)
	if err != nil {
		return nil, err
	}
	// -db: stay in the foreground, no master process.
	p, err := startProc(dir, "haproxy", nil, "haproxy", "-db", "-f", conf)
	if err != nil {
		return nil, err
	}
	return p, readiness(p, r)
}

// ---------------------------------------------------------------------------
// Caddy (HTTP only: TCP and UDP proxying need plugins the Debian build lacks)

type caddyTarget struct{}

func (caddyTarget) name() string { return "caddy" }
func (caddyTarget) check() error {
	if _, err := exec.LookPath("caddy"); err != nil {
		return errors.New("caddy not installed (Debian: apt-get install caddy)")
	}
	return nil
}
func (caddyTarget) supports(k routeKind) bool {
	return k == kindHTTP || k == kindHTTPS || k == kindH3 || k == kindHTTPSStatic
}

// A Caddyfile: admin endpoint off (its autosave goes to dir), no automatic HTTPS
// (the TLS listener uses the shared certificate through the tls
// directive), HTTP/1.1 and HTTP/2 (and HTTP/3 on the same UDP port for the h3
// scenario), no access log
// (Caddy logs requests only with a "log" directive) and its own log at
// ERROR, keep-alive upstream with a pool of 64 idle connections like
// nginx's. The site has no host matcher, so any Host is proxied.
const caddyfile = `{
	admin off
	auto_https off
	log {
		level ERROR
	}
	servers {
		protocols h1 h2{{if .H3}} h3{{end}}
	}
}
{{if .TLS}}https{{else}}http{{end}}://:{{.Port}} {
	bind {{.Host}}
{{- if .TLS}}
	tls {{.Cert.Cert}} {{.Cert.Key}} {
		protocols tls1.3
	}
{{- end}}
{{- if .Static}}
	header Content-Type text/plain
	respond "{{.Body}}" 200
{{- else}}
	reverse_proxy {{.R.Backend}} {
		transport http {
			keepalive 90s
			keepalive_idle_conns 64
			keepalive_idle_conns_per_host 64
		}
	}
{{- end}}
}
`

func (caddyTarget) start(e *env, dir string, r route) (*proc, error) {
	host, port, err := net.SplitHostPort(r.Listen)
	if err != nil {
		return nil, err
	}
	d := struct {
		tmplData
		Host, Port string
	}{data(e, dir, r), host, port}
	conf, err := render(dir, "Caddyfile", caddyfile, d)
	if err != nil {
		return nil, err
	}
	// XDG dirs in dir: Caddy's storage and autosave stay out of $HOME.
	env := []string{"GOMAXPROCS=1", "XDG_DATA_HOME=" + dir, "XDG_CONFIG_HOME=" + dir, "HOME=" + dir}
	p, err := startProc(dir, "caddy", env, "caddy", "run", "--config", conf, "--adapter", "caddyfile")
	if err != nil {
		return nil, err
	}
	return p, readiness(p, r)
}

// ---------------------------------------------------------------------------
// direct: the client talks to the backend itself (not for https: the
// backend speaks plaintext HTTP/1.1 only)

type directTarget struct{}

func (directTarget) name() string { return directName }
func (directTarget) check() error { return nil }
func (directTarget) supports(k routeKind) bool {
	return k == kindTCP || k == kindUDP || k == kindHTTP || k == kindQUICPass
}
func (directTarget) start(*env, string, route) (*proc, error) { return nil, nil }

func targetByName(name string) (target, error) {
	for _, t := range allTargets {
		if t.name() == name {
			return t, nil
		}
	}
	return nil, fmt.Errorf("unknown target %q", name)
}
