entrypoint "web" {
  address         = ":8080"
  max_connections = null
}
tcp_route "r" {
  entrypoints = ["web", null]
  service     = "app"
}
service "app" {
  backend "127.0.0.1:9000" {}
}
