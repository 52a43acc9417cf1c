# PROXY protocol in from trusted peers, v1 out to a TCP service.
entrypoint "web" {
  address = ":8443"
  proxy_protocol {
    trusted = ["127.0.0.0/8", "10.1.2.3", "::1", "192.168.7.9/16", "fd00::/8"]
    timeout = "2s"
  }
}

tcp_route "web" {
  entrypoints = ["web"]
  service     = "app"
}

service "app" {
  proxy_protocol = "v1"
  backend "app.internal:443" {}
}
