entrypoint "web" { address = ":8080" }
service "app" {
  backend "http://127.0.0.1:9000" {}
}
http_route "hosts" {
  entrypoints = ["web"]
  hosts       = ["api.example.com:8080", "*", "a..b", "API.example.com", "api.example.com.", "[::1]:80", "fe80::1%eth0", "*.*.example.com", "https://shop.example.com:8443/x", "http://[::1]/"]
  service     = "app"
}
http_route "empty" {
  entrypoints = ["web"]
  hosts       = []
  methods     = []
  headers     = {}
  query       = {}
  client_ip   = []
  service     = "app"
}
http_route "paths" {
  entrypoints = ["web"]
  path        = "v1"
  path_prefix = "/v1?x=1"
  path_regex  = "^/(a"
  service     = "app"
}
http_route "prefix" {
  entrypoints = ["web"]
  path_prefix = "/ok#frag"
  service     = "app"
}
http_route "regex" {
  entrypoints = ["web"]
  path_regex  = "[z-a]"
  service     = "app"
}
http_route "methods" {
  entrypoints = ["web"]
  methods     = ["GET", "get", "BAD METHOD", ""]
  service     = "app"
}
http_route "headers" {
  entrypoints = ["web"]
  headers     = { "x-a" = "1", "X-A" = "2", "Bad Name" = "3", "Host" = "example.com", "X-B" = "a\r\nX-Evil: 1", "X-C" = 4 }
  service     = "app"
}
http_route "headers_type" {
  entrypoints = ["web"]
  headers     = ["X-A"]
  query       = { "" = "1", "a" = "1", "a" = "2" }
  client_ip   = ["10.0.0.0/33"]
  priority    = 1.5
  middlewares = ["limit"]
  service     = "app"
}
http_route "typo" {
  entrypoints = ["web"]
  path_prefx  = "/"
  host        = ["a.example.com"]
  service     = "app"
}
# Caddy's wildcards: '*' is literal here, so such routes never matched
http_route "caddy_prefix" {
  entrypoints = ["web"]
  path_prefix = "/api/*"
  methods     = ["*"]
  service     = "app"
}
http_route "caddy_path" {
  entrypoints = ["web"]
  path        = "/static/*"
  service     = "app"
}
