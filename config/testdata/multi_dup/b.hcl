entrypoint "web" { address = ":8081" }
service "app" {
  backend "127.0.0.1:9001" {}
}
tcp_route "other" {
  entrypoints = ["web2"]
  service     = "app"
}
entrypoint "web2" { address = "0.0.0.0:8080" }
