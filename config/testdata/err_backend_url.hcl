entrypoint "web" { address = ":8080" }
tcp_route "r" {
  entrypoints = ["web"]
  service     = "app"
}
http_route "h" {
  entrypoints = ["web2"]
  service     = "web"
}
entrypoint "web2" { address = ":8081" }
service "app" {
  backend "tls://127.0.0.1:9003" {}
  backend "h3://127.0.0.1:9005" {}
  backend "tcp://127.0.0.1:9006" {}
  backend "tls://" {}
  backend "tls://db.internal" {}
  backend "tls://db.internal:0" {}
  backend "tls://:5432" {}
  backend "TLS://127.0.0.1:9003" {}
  backend "tls://db.internal:5432/x" {}
}
service "web" {
  backend "http://127.0.0.1:9001" {}
  backend "HTTPS://api.example.com:443" {}
  backend "h2c://127.0.0.1:9004" {}
  backend "https://api.example.com" {}
  backend "http://api.example.com" {}
  backend "h2c://api.example.com" {}
  backend "http://127.0.0.1:9002/" {}
  backend "http://127.0.0.1:9002/api" {}
  backend "http://127.0.0.1:9002?x=1" {}
  backend "http://user:pw@127.0.0.1:9002" {}
  backend "htp://127.0.0.1:9002" {}
  backend "ws://127.0.0.1:9002" {}
  backend "https://127.0.0.1:9001" {}
  backend "http://127.0.0.1:9001" {}
  backend "h3://api.example.com" {}
  backend "h3://127.0.0.1:9001" {}
  backend "H3://127.0.0.1:9001" {}
}
