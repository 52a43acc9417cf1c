entrypoint "web" { address = ":8080" }
tcp_route "r" {
  entrypoints = ["web"]
  service     = "app"
}
service "app" {
  backend "http://127.0.0.1:9001" {}
  backend "https://api.example.com" {}
  backend "tls://127.0.0.1:9003" {}
  backend "h2c://127.0.0.1:9004" {}
}
