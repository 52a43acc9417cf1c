entrypoint "web" {
  address = ":8443"
  http3   = true
}
entrypoint "plain" {
  address               = ":8080"
  allow_0rtt            = true
  http3_advertised_port = 443
  quic {
    retry_threshold = 5
  }
}
entrypoint "dns" {
  address = ":5353"
  network = "udp"
  http3   = true
}
http_route "r" {
  entrypoints = ["web", "plain"]
  service     = "app"
}
udp_route "d" {
  entrypoints = ["dns"]
  service     = "dns"
}
service "app" {
  backend "http://127.0.0.1:9000" {}
}
service "dns" {
  backend "127.0.0.1:53" {}
}
