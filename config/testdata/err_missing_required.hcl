entrypoint "web" {
  network = "tcp"
  proxy_protocol {
    timeout = "1s"
  }
}
tcp_route "no_entrypoints" {
  service = "app"
}
tcp_route "no_service" {
  entrypoints = ["web"]
}
service "app" {
  backend "127.0.0.1:9000" {}
}
