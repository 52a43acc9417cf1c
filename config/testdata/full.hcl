# Every attribute written with a non-default value.
global {
  grace_period = "30s"
  watch        = true
}

log {
  level  = "debug"
  format = "json"
  access {
    format = "combined"
    path   = "access.log"
    buffer = 100
  }
}

admin {
  address      = "0.0.0.0:9901"
  allow_remote = true
  pprof        = true
  basic_auth {
    users = ["ops:$2a$04$ukZWu3Uv0/mEMlTifWmsZu6wbBCB179P/ukDIhekrJr8Tt1NsDNpi"]
    realm = "ops"
  }
}

entrypoint "web" {
  address = "0.0.0.0:8080"
  network = "tcp"
  proxy_protocol {
    trusted = ["10.0.0.0/8"]
    timeout = "3s"
  }
  timeouts {
    handshake = "7s"
    idle      = "2m"
  }
  max_connections = 123
  http3           = false
}

entrypoint "websecure" {
  address               = "0.0.0.0:8443"
  http3                 = true
  http3_advertised_port = 443
  allow_0rtt            = true
  trusted_proxies       = ["10.0.0.0/8"]
  quic {
    max_incoming_streams = 50
    retry_threshold      = 10
  }
}

tls {
  min_version = "1.3"
  certificate "site" {
    cert_file = "certs/site.crt"
    key_file  = "certs/site.key"
    default   = true
  }
  certificate "other" {
    cert_file = "certs/other.crt"
    key_file  = "certs/other.key"
  }
  acme "internal" {
    email         = "ops@example.com"
    directory     = "https://ca.internal:9000/acme/dir"
    ca_file       = "certs/ca.pem"
    key_type      = "ec384"
    challenge     = "dns-01"
    dns_provider  = "httpreq"
    dns_resolvers = ["127.0.0.1:5353", "10.0.0.53"]
    storage       = "acme-store"
    domains       = ["Example.com", "*.example.com"]
    auto          = true
    renew_before  = "720h"
    on_demand {
      ask      = "http://127.0.0.1:9000/allowed"
      rate     = 5
      interval = "10m"
    }
  }
}

entrypoint "dns" {
  address   = "127.0.0.1:5353"
  network   = "udp"
  max_flows = 77
}

tcp_route "web" {
  entrypoints = ["web"]
  service     = "app"
  tls         = "none"
}

tcp_route "db" {
  entrypoints = ["websecure"]
  sni         = ["DB.Example.com.", "*.db.example.com"]
  alpn        = ["postgresql"]
  tls         = "terminate"
  service     = "pg"
}

tcp_route "legacy" {
  entrypoints = ["websecure"]
  sni         = ["legacy.example.com"]
  tls         = "terminate"  # tls:// re-encrypts; passthrough would nest TLS
  service     = "legacy"
}

udp_route "dns" {
  entrypoints  = ["dns"]
  service      = "dns"
  idle_timeout = "45s"
}

service "app" {
  balancer        = "weighted"
  proxy_protocol  = "v2"
  connect_timeout = "1500ms"
  fail_timeout    = "20s"
  backend "127.0.0.1:9001" {
    weight = 5
  }
  backend "localhost:9002" {
    weight = 2
  }
}

service "dns" {
  balancer       = "least_conn"
  proxy_protocol = "v2"
  backend "[::1]:53" {}
}

service "pg" {
  backend "tls://db1.internal:5432" {}
  tls {
    server_name = "DB.internal"
    ca_file     = "certs/ca.pem"
  }
}

service "legacy" {
  backend "tls://192.0.2.10:443" {}
  tls {
    insecure_skip_verify = true
  }
}

entrypoint "http" {
  address          = "0.0.0.0:8000"
  max_header_bytes = 32768
  trusted_proxies  = ["10.0.0.0/8", "192.0.2.1"]
  http2 {
    max_concurrent_streams = 100
  }
  timeouts {
    read_header = "8s" # HTTP: on an entrypoint with http_routes
    write       = "1m"
  }
  middlewares = ["blocklist", "hdrs"]
}

http_route "api" {
  entrypoints = ["http", "websecure"]
  hosts       = ["API.Example.com.", "*.api.example.com", "192.0.2.7"]
  path_prefix = "/v1/"
  methods     = ["get", "POST"]
  headers     = { "x-canary" = "1" }
  query       = { "debug" = "true" }
  client_ip   = ["10.0.0.0/8"]
  priority    = 10
  middlewares = ["to_https", "old_site", "office", "limit", "conc", "auth", "fwd", "strip", "add", "small", "gzip", "pages"]
  service     = "api"
}

http_route "exact" {
  entrypoints = ["http"]
  path        = "/healthz"
  middlewares = ["replace"]
  service     = "hello"
}

http_route "users" {
  entrypoints = ["http"]
  path_regex  = "^/u/[0-9]+$"
  priority    = -1
  middlewares = ["rewrite", "auth_min"]
  service     = "grpc"
}

service "api" {
  balancer                   = "hash"
  hash_key                   = "header:x-user"
  pass_host                  = false
  response_header_timeout    = "15s"
  idle_conn_timeout          = "1m"
  max_idle_conns_per_backend = 64
  flush_interval             = "100ms"
  backend "http://127.0.0.1:9101" {
    weight = 3
  }
  backend "https://api.internal:8443" {}
  backend "h3://api.internal:8443" {}
  tls {
    ca_file = "certs/ca.pem"
  }
  sticky {
    cookie    = "srv"
    max_age   = "1h"
    secure    = true
    http_only = true
  }
  health_check {
    path            = "/healthz?full=1"
    method          = "head"
    host            = "api.internal"
    interval        = "10s"
    timeout         = "3s"
    expect_status   = "200-299"
    unhealthy_after = 3
    healthy_after   = 2
  }
  circuit_breaker {
    failure_ratio  = 0.25
    min_requests   = 10
    interval       = "20s"
    open_timeout   = "1m"
    failure_status = 503
  }
  retry {
    attempts        = 3
    per_try_timeout = "2s"
  }
}

quic_route "pass" {
  entrypoints = ["websecure"]
  sni         = ["P.Example.com.", "*.p.example.com"]
  service     = "quicpass"
}

service "quicpass" {
  backend "127.0.0.1:4433" {}
}

service "grpc" {
  balancer = "p2c"
  backend "h2c://127.0.0.1:50051" {}
}

service "hello" {
  respond {
    status  = 418
    body    = "short and stout\n"
    headers = { "content-type" = "text/plain; charset=utf-8" }
  }
}

middleware "limit" {
  rate_limit {
    average  = 100
    burst    = 200
    period   = "1m"
    key      = "header:x-api-key"
    max_keys = 5000
  }
}

middleware "conc" {
  in_flight {
    max = 10
    key = "host"
  }
}

middleware "auth" {
  basic_auth {
    users = [
      "alice:$2a$04$sC1EV4HTYkVejmN2S4n6iuc3jjXPSS5o7IeIvcteXiFWvL3M4OUjC",
      "bob:$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA",
    ]
    users_file   = "users.htpasswd"
    realm        = "staff"
    strip_header = false
    header_field = "x-auth-user"
  }
}

middleware "auth_min" {
  basic_auth {
    users = ["alice:$2b$04$sC1EV4HTYkVejmN2S4n6iuc3jjXPSS5o7IeIvcteXiFWvL3M4OUjC"]
  }
}

middleware "fwd" {
  forward_auth {
    address              = "https://auth.internal:9000/verify"
    trust_forward_header = true
    request_headers      = ["cookie", "authorization"]
    response_headers     = ["x-user", "x-user-groups"]
    timeout              = "2s"
  }
}

middleware "hdrs" {
  headers {
    request {
      set    = { "x-env" = "prod" }
      add    = { "x-trace" = "1" }
      remove = ["x-debug"]
    }
    response {
      set    = { "cache-control" = "no-store" }
      add    = { "x-served-by" = "proxynow" }
      remove = ["server"]
    }
    cors {
      allow_origins     = ["https://App.example.com", "http://localhost:3000"]
      allow_methods     = ["get", "POST"]
      allow_headers     = ["content-type"]
      expose_headers    = ["x-request-id"]
      allow_credentials = true
      max_age           = "10m"
    }
    hsts {
      max_age            = "17520h"
      include_subdomains = true
      preload            = true
    }
    security = true
  }
}

middleware "gzip" {
  compress {
    encodings  = ["gzip", "zstd"]
    min_length = 256
    types      = ["text/", "Application/JSON"]
  }
}

middleware "to_https" {
  redirect_scheme {
    scheme    = "https"
    port      = 8443
    permanent = true
  }
}

middleware "old_site" {
  redirect_regex {
    regex       = "^https?://old\\.example\\.com/(.*)$"
    replacement = "https://example.com/$${1}"
    permanent   = true
  }
}

middleware "strip" {
  strip_prefix {
    prefixes = ["/api", "/v1"]
  }
}

middleware "add" {
  add_prefix {
    prefix = "/backend"
  }
}

middleware "replace" {
  replace_path {
    path = "/index.html"
  }
}

middleware "rewrite" {
  replace_path_regex {
    regex       = "^/u/([0-9]+)$"
    replacement = "/users/$1"
  }
}

middleware "office" {
  ip_allow {
    cidrs = ["192.0.2.0/24", "2001:db8::1"]
    depth = 1
  }
}

middleware "blocklist" {
  ip_deny {
    cidrs = ["198.51.100.7"]
  }
}

middleware "small" {
  max_body {
    bytes = 5000000000
  }
}

middleware "pages" {
  error_pages {
    statuses = ["500-599", 404]
    service  = "hello"
    path     = "/errors/{status}.html"
  }
}
