tls {
  certificate "site" {
    cert_file = "certs/site.crt"
    key_file  = "certs/site.key"
  }
}
entrypoint "web" {
  address               = ":8443"
  http3                 = true
  http3_advertised_port = 70000
  quic {
    max_incoming_streams = 0
    retry_threshold      = -1
    max_streams          = 3
  }
}
entrypoint "dns" {
  address = "0.0.0.0:8443"
  network = "udp"
}
http_route "r" {
  entrypoints = ["web"]
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
entrypoint "lonely" {
  address = ":9443"
  http3   = true
}
tcp_route "t" {
  entrypoints = ["lonely"]
  service     = "dns"
}
