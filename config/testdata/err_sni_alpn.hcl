entrypoint "web" { address = ":8443" }
tcp_route "db" {
  entrypoints = ["web"]
  sni         = ["db.example.com"]
  alpn        = ["postgresql"]
  service     = "pg"
}
service "pg" {
  backend "127.0.0.1:5432" {}
}
