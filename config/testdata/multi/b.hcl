tcp_route "web" {
  entrypoints = ["web"]
  service     = "app"
}
udp_route "dns" {
  entrypoints = ["dns"]
  service     = "dns"
}
service "app" {
  backend "127.0.0.1:9000" {}
}
service "dns" {
  backend "127.0.0.1:53" {}
}
