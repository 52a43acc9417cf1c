entrypoint "web" { address = ":8080" }
entrypoint "alt" { address = ":8081" }
entrypoint "raw" { address = ":8082" }
service "app" {
  backend "http://127.0.0.1:9000" {}
}
service "other" {
  backend "http://127.0.0.1:9001" {}
}
service "pg" {
  backend "127.0.0.1:5432" {}
}
http_route "a" {
  entrypoints = ["web", "alt"]
  hosts       = ["a.example.com", "b.example.com"]
  path_prefix = "/api/"
  methods     = ["GET", "POST"]
  headers     = { "X-Canary" = "1" }
  query       = { "v" = "2" }
  client_ip   = ["10.0.0.0/8", "192.168.0.0/16"]
  priority    = 5
  service     = "app"
}
# The same matchers, written differently, on both entrypoints: one error.
http_route "b" {
  entrypoints = ["alt", "web"]
  hosts       = ["B.example.com.", "a.example.com"]
  path_prefix = "/api/"
  methods     = ["post", "get"]
  headers     = { "x-canary" = "1" }
  query       = { "v" = "2" }
  client_ip   = ["192.168.1.1/16", "10.0.0.0/8"]
  priority    = 5
  service     = "other"
}
# Differs only in priority, or in one matcher: fine.
http_route "c" {
  entrypoints = ["web"]
  hosts       = ["a.example.com", "b.example.com"]
  path_prefix = "/api/"
  methods     = ["GET", "POST"]
  headers     = { "X-Canary" = "1" }
  query       = { "v" = "2" }
  client_ip   = ["10.0.0.0/8", "192.168.0.0/16"]
  service     = "app"
}
http_route "d" {
  entrypoints = ["web"]
  hosts       = ["a.example.com", "b.example.com"]
  path        = "/api/"
  methods     = ["GET", "POST"]
  headers     = { "X-Canary" = "1" }
  query       = { "v" = "2" }
  client_ip   = ["10.0.0.0/8", "192.168.0.0/16"]
  priority    = 5
  service     = "app"
}
# Two catch-alls with the default priority.
http_route "all" {
  entrypoints = ["alt"]
  service     = "app"
}
http_route "all2" {
  entrypoints = ["alt"]
  service     = "other"
}
# A tls = "none" tcp_route and HTTP want the same connections; reported
# once per entrypoint.
tcp_route "plain" {
  entrypoints = ["raw"]
  service     = "pg"
}
http_route "on_raw" {
  entrypoints = ["raw"]
  path        = "/x"
  service     = "app"
}
http_route "on_raw2" {
  entrypoints = ["raw"]
  path        = "/y"
  service     = "app"
}
