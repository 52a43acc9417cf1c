entrypoint "web" {
  address = ":8080"
  proxy_protocol {
    trusted = []
  }
}
tcp_route "r" {
  entrypoints = []
  service     = "app"
}
service "app" {
  backend "127.0.0.1:9000" {}
}
