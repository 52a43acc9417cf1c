entrypoint "web" {
  address = "127.0.0.1:8080"
}

tcp_route "web" {
  entrypoints = ["web"]
  service     = "app"
}

service "app" {
  backend "127.0.0.1:9000" {}
}
