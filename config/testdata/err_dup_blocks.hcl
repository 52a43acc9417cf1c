global { grace_period = "1s" }
global { grace_period = "2s" }
log { level = "debug" }
log { level = "info" }
entrypoint "web" {
  address = ":8080"
  timeouts { idle = "1m" }
  timeouts { idle = "2m" }
  proxy_protocol { trusted = ["127.0.0.1"] }
  proxy_protocol { trusted = ["10.0.0.1"] }
}
tcp_route "r" {
  entrypoints = ["web"]
  service     = "app"
}
service "app" {
  backend "127.0.0.1:9000" {}
}
