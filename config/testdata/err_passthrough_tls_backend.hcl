# A passthrough route keeps the client's TLS end to end: a tls:// backend
# would wrap it in a second TLS connection, so it is refused there and
# allowed on a terminate route (re-encryption).
tls {
  certificate "site" {
    cert_file = "certs/site.crt"
    key_file  = "certs/site.key"
  }
}
entrypoint "tls" { address = ":8443" }
tcp_route "db" {
  entrypoints = ["tls"]
  sni         = ["db.example.com"]
  service     = "pg"
}
tcp_route "explicit" {
  entrypoints = ["tls"]
  sni         = ["db2.example.com"]
  tls         = "passthrough"
  service     = "pg"
}
tcp_route "offload" {
  entrypoints = ["tls"]
  sni         = ["db3.example.com"]
  tls         = "terminate"
  service     = "pg"
}
service "pg" {
  backend "127.0.0.1:5432" {}
  backend "tls://127.0.0.1:5433" {}
}
