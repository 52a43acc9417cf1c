# Every HTTP attribute, written with a non-default value where it has one.
entrypoint "web" {
  address          = ":8080"
  max_header_bytes = 1024
  trusted_proxies  = ["127.0.0.1", "10.1.2.3/8", "::1"]
  http2 {
    max_concurrent_streams = 10000
  }
  timeouts {
    read_header = "5s"
    idle        = "90s"
    write       = "0s"
  }
}

entrypoint "alt" {
  address          = ":8081"
  max_header_bytes = 16777216
  trusted_proxies  = []
  http2 {
    max_concurrent_streams = 1
  }
  timeouts {
    write = "5m"
  }
}

http_route "api" {
  entrypoints = ["web", "alt"]
  hosts       = ["API.Example.COM", "*.Example.com.", "10.0.0.1", "[2001:DB8::1]", "::1"]
  path_prefix = "/v1/"
  methods     = ["get", "Post", "PURGE"]
  headers     = { "x-canary" = "1", "X-EMPTY" = "" }
  query       = { "a" = "1", "B" = "two words" }
  client_ip   = ["192.0.2.0/24", "2001:db8::/32"]
  priority    = 100
  middlewares = []
  service     = "api"
}

# Same matchers as "api" but another priority: both can win.
http_route "api-low" {
  entrypoints = ["web"]
  hosts       = ["*.example.com", "api.example.com", "::1", "2001:db8::1", "10.0.0.1"]
  path_prefix = "/v1/"
  methods     = ["PURGE", "POST", "GET"]
  headers     = { "X-Canary" = "1", "x-empty" = "" }
  query       = { "B" = "two words", "a" = "1" }
  client_ip   = ["2001:db8::/32", "192.0.2.0/24"]
  service     = "api"
}

# Same as "api" on another path kind: no conflict.
http_route "exact" {
  entrypoints = ["web"]
  hosts       = ["api.example.com"]
  path        = "/v1/"
  service     = "static"
}

http_route "regex" {
  entrypoints = ["web"]
  path_regex  = "^/u/(?P<id>[0-9]+)$"
  priority    = -5
  service     = "grpc"
}

service "api" {
  balancer = "hash"
  backend "http://127.0.0.1:9001" {
    weight = 2
  }
  backend "http://[::1]:9002" {}
  backend "https://api.internal:9443" {}
  backend "https://192.0.2.10:9443" {}
  tls {
    server_name = "API.internal."
  }
  health_check {
    expect_status = "204"
  }
  circuit_breaker {
    failure_ratio  = 1
    failure_status = "502-504"
  }
  retry {
    attempts        = 1
    per_try_timeout = "0s"
  }
  sticky {}
}

service "grpc" {
  balancer                   = "least_conn"
  hash_key                   = "cookie:Session"
  pass_host                  = true
  response_header_timeout    = "1s"
  idle_conn_timeout          = "1s"
  max_idle_conns_per_backend = 1
  flush_interval             = "0s"
  backend "h2c://127.0.0.1:50051" {}
  backend "h2c://127.0.0.1:50052" {}
  health_check {
    interval = "1s"
    timeout  = "999ms"
  }
}

service "static" {
  balancer = "hash"
  hash_key = "path"
  backend "http://127.0.0.1:9003" {}
}

service "hashed" {
  balancer = "hash"
  hash_key = "header:x-tenant-id"
  backend "http://127.0.0.1:9004" {}
}

service "maintenance" {
  respond {
    status  = 503
    body    = file("files/with-newline.txt")
    headers = { "retry-after" = "120", "Content-Type" = "text/plain" }
  }
}
