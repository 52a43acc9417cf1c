entrypoint "web" {
  address = ":8443"
  http3   = true
}
tcp_route "r" {
  entrypoints = ["web"]
  service     = "app"
}
service "app" {
  backend "127.0.0.1:9000" {}
}
