entrypoint "web" { address = ":8080" }
entrypoint "alt" { address = ":8081" }
entrypoint "dns" {
  address = ":53"
  network = "udp"
}
tcp_route "first" {
  entrypoints = ["web"]
  service     = "app"
}
tcp_route "second" {
  entrypoints = ["alt", "web"]
  service     = "app"
}
tcp_route "twice" {
  entrypoints = ["alt", "alt"]
  service     = "app"
}
udp_route "u1" {
  entrypoints = ["dns"]
  service     = "app"
}
udp_route "u2" {
  entrypoints = ["dns"]
  service     = "app"
}
service "app" {
  backend "127.0.0.1:9000" {}
}
