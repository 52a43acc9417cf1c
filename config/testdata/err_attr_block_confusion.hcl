entrypoint "web" {
  address {}
  timeouts = { idle = "1m" }
}
tcp_route "r" {
  entrypoints = ["web"]
  service     = "app"
}
service "app" {
  backend = "127.0.0.1:9000"
}
