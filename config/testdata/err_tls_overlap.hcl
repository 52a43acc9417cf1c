# Overlapping tcp_routes on one entrypoint.
entrypoint "web" { address = ":8443" }
entrypoint "alt" { address = ":9443" }
tls {
  certificate "site" {
    cert_file = "certs/site.crt"
    key_file  = "certs/site.key"
  }
}
tcp_route "a" {
  entrypoints = ["web", "alt"]
  sni         = ["db.example.com", "*.db.example.com"]
  service     = "app"
}
# same exact name, spelled differently, on both entrypoints: one error
tcp_route "b" {
  entrypoints = ["web", "alt"]
  sni         = ["DB.example.com."]
  tls         = "terminate"
  service     = "app"
}
# same wildcard
tcp_route "c" {
  entrypoints = ["web"]
  sni         = ["*.DB.example.com"]
  service     = "app"
}
# a name covered by a's wildcard: exact wins, not ambiguous
tcp_route "d" {
  entrypoints = ["web"]
  sni         = ["x.db.example.com"]
  service     = "app"
}
# same name as d but with alpn: more specific, not ambiguous
tcp_route "e" {
  entrypoints = ["web"]
  sni         = ["x.db.example.com"]
  alpn        = ["h2", "http/1.1"]
  service     = "app"
}
# shares alpn "http/1.1" with e
tcp_route "f" {
  entrypoints = ["web"]
  sni         = ["x.db.example.com"]
  alpn        = ["http/1.1", "x-other"]
  service     = "app"
}
# disjoint alpn with e: fine
tcp_route "g" {
  entrypoints = ["web"]
  sni         = ["x.db.example.com"]
  alpn        = ["postgresql"]
  service     = "app"
}
# TLS catch-all, then a second one
tcp_route "tls_all" {
  entrypoints = ["web"]
  tls         = "passthrough"
  service     = "app"
}
tcp_route "tls_all2" {
  entrypoints = ["web"]
  tls         = "terminate"
  service     = "app"
}
# TLS catch-alls by alpn: h2 overlaps nothing without alpn, but h2 twice does
tcp_route "alpn_all" {
  entrypoints = ["web"]
  alpn        = ["h2"]
  service     = "app"
}
tcp_route "alpn_all2" {
  entrypoints = ["web"]
  alpn        = ["h2"]
  service     = "app"
}
# a catch-all for connections that are not TLS coexists with TLS ones
tcp_route "plain" {
  entrypoints = ["web"]
  service     = "app"
}
tcp_route "plain2" {
  entrypoints = ["web"]
  tls         = "none"
  service     = "app"
}
service "app" {
  backend "127.0.0.1:9000" {}
}
