entrypoint "dns" {
  address = ":53"
  network = "udp"
}
udp_route "dns" {
  entrypoints = ["dns"]
  service     = "dns"
}
service "dns" {
  proxy_protocol = "v1"
  backend "127.0.0.1:5353" {}
}
