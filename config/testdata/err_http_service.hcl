entrypoint "web" { address = ":8080" }
entrypoint "tcp" { address = ":8081" }
http_route "r" {
  entrypoints = ["web"]
  service     = "app"
}
tcp_route "t" {
  entrypoints = ["tcp"]
  service     = "l4"
}
service "mixed" {
  backend "http://127.0.0.1:9000" {}
  backend "h2c://127.0.0.1:9001" {}
  backend "127.0.0.1:9002" {}
  backend "tls://127.0.0.1:9003" {}
}
service "l4" {
  balancer                   = "p2c"
  hash_key                   = "client_ip"
  pass_host                  = false
  response_header_timeout    = "1s"
  idle_conn_timeout          = "1s"
  max_idle_conns_per_backend = 1
  flush_interval             = "1s"
  backend "127.0.0.1:5432" {}
  sticky {}
  health_check {}
  circuit_breaker {}
  retry {}
}
service "app" {
  balancer                   = "hash"
  hash_key                   = "header:Bad Name"
  response_header_timeout    = "0s"
  idle_conn_timeout          = "-1s"
  max_idle_conns_per_backend = 0
  flush_interval             = "-1ms"
  backend "http://127.0.0.1:9000" {}
  sticky {
    cookie  = "a;b"
    max_age = "-1s"
  }
  health_check {
    path            = "healthz"
    method          = "G T"
    host            = "a b"
    interval        = "2s"
    timeout         = "2s"
    expect_status   = "2xx"
    unhealthy_after = 0
    healthy_after   = -1
  }
  circuit_breaker {
    failure_ratio      = 1.5
    min_requests       = 0
    interval           = "0s"
    open_timeout       = "0s"
    failure_status     = "599-500"
    half_open_requests = 1
  }
  retry {
    attempts        = 0
    per_try_timeout = "-1s"
    on              = ["5xx"]
  }
  fallback = "other"
}
service "keys" {
  balancer = "hash"
  hash_key = "clientip"
  backend "http://127.0.0.1:9000" {}
  health_check {
    timeout       = "10s"
    expect_status = 600
  }
  circuit_breaker {
    failure_ratio  = 0
    failure_status = "abc"
  }
}
service "keys2" {
  balancer = "hash"
  hash_key = "cookie:"
  backend "http://127.0.0.1:9000" {}
  health_check {
    interval = "1s"
  }
  circuit_breaker {
    failure_ratio = "x"
  }
}
http_route "k" {
  entrypoints = ["web"]
  path        = "/k"
  service     = "keys"
}
http_route "k2" {
  entrypoints = ["web"]
  path        = "/k2"
  service     = "keys2"
}
service "pp" {
  proxy_protocol = "v2"
  backend "https://127.0.0.1:9443" {}
}
http_route "pp" {
  entrypoints = ["web"]
  path        = "/pp"
  service     = "pp"
}
