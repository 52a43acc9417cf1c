entrypoint "web" { address = ":8080" }
http_route "r" {
  entrypoints = ["web"]
  service     = "static"
}
http_route "s" {
  entrypoints = ["web"]
  path        = "/s"
  service     = "nothing"
}
http_route "t" {
  entrypoints = ["web"]
  path        = "/t"
  service     = "bad"
}
service "static" {
  balancer        = "round_robin"
  proxy_protocol  = "v2"
  connect_timeout = "1s"
  fail_timeout    = "1s"
  pass_host       = false
  backend "http://127.0.0.1:9000" {}
  tls {}
  health_check {}
  respond {
    status = 200
  }
}
service "nothing" {
}
service "bad" {
  respond {
    status  = 99
    body    = 42
    headers = { "Content-Length" = "3", "transfer-encoding" = "chunked", "X-Ok" = "1", "Bad Name" = "x", "X-Nl" = "a\nb" }
    code    = 200
  }
  respond {}
}
service "big" {
  respond {
    status = 600
  }
}
http_route "u" {
  entrypoints = ["web"]
  path        = "/u"
  service     = "big"
}
# 1xx are interim answers: a respond service needs a final status
service "interim" {
  respond {
    status = 101
  }
}
http_route "v" {
  entrypoints = ["web"]
  path        = "/v"
  service     = "interim"
}
