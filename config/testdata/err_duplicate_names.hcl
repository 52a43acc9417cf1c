entrypoint "web" { address = ":8080" }
entrypoint "web" { address = ":8081" }
entrypoint "dns" {
  address = ":53"
  network = "udp"
}
tcp_route "r" {
  entrypoints = ["web"]
  service     = "app"
}
tcp_route "r" {
  entrypoints = ["web"]
  service     = "app"
}
udp_route "u" {
  entrypoints = ["dns"]
  service     = "app"
}
udp_route "u" {
  entrypoints = ["dns"]
  service     = "app"
}
service "app" {
  backend "127.0.0.1:9000" {}
}
service "app" {
  backend "127.0.0.1:9001" {}
}
