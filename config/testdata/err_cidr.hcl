entrypoint "web" {
  address = ":8080"
  proxy_protocol {
    trusted = ["10.0.0.0/8", "10.0.0.300/8", "127.0.0.1/33", "not-an-ip", "::1/129"]
  }
}
tcp_route "r" {
  entrypoints = ["web"]
  service     = "app"
}
service "app" {
  backend "127.0.0.1:9000" {}
}
