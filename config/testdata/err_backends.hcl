entrypoint "web" { address = ":8080" }
tcp_route "r" {
  entrypoints = ["web"]
  service     = "empty"
}
tcp_route "s" {
  entrypoints = ["web2"]
  service     = "bad"
}
entrypoint "web2" { address = ":8081" }
service "empty" {
  balancer = "random"
}
service "bad" {
  backend "127.0.0.1:9000" { weight = 0 }
  backend "127.0.0.1:9001" { weight = -1 }
  backend "127.0.0.1:9000" {}
  backend "LOCALHOST:1" {}
  backend "localhost:01" {}
  backend ":9002" {}
  backend "127.0.0.1:0" {}
  backend "127.0.0.1" {}
}
