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
  backend "h3://127.0.0.1:9005" {}
  backend "tcp://127.0.0.1:9006" {}
  backend "tls://" {}
  backend "tls://db.internal" {}
  backend "tls://db.internal:0" {}
  backend "tls://:5432" {}
  backend "TLS://127.0.0.1:9003" {}
  backend "tls://db.internal:5432/x" {}
}
