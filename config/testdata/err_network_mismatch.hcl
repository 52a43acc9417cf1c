entrypoint "web" { address = ":8080" }
entrypoint "dns" {
  address = ":53"
  network = "udp"
}
tcp_route "t" {
  entrypoints = ["dns"]
  service     = "app"
}
udp_route "u" {
  entrypoints = ["web"]
  service     = "app"
}
service "app" {
  backend "127.0.0.1:9000" {}
}
tcp_route "tls_on_udp" {
  entrypoints = ["dns"]
  sni         = ["db.example.com"]
  service     = "app"
}
