entrypoint "web" { address = ":8080" }
service "app" {
  backend "127.0.0.1:9000" {}
}
tcp_route "web" {
  entrypoints = ["web"]
  service     = "app"
}
