entrypoint "web" { address = ":8080" }
tcp_route "r" {
  entrypoints = ["web"]
  service     = "app"
}
service "app" {
  backend "127.0.0.1:9000" {}
  health_check {
    path = "/healthz"
  }
  circuit_breaker {}
  retry {
    attempts = 2
  }
  respond {
    status = 200
  }
}
