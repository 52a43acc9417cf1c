# Every attribute written with a non-default value.
global {
  grace_period = "30s"
}

log {
  level  = "debug"
  format = "json"
}

entrypoint "web" {
  address = "0.0.0.0:8080"
  network = "tcp"
  proxy_protocol {
    trusted = ["10.0.0.0/8"]
    timeout = "3s"
  }
  timeouts {
    handshake   = "7s"
    read_header = "8s"
    idle        = "2m"
  }
  max_connections = 123
  http3           = false
}

entrypoint "dns" {
  address   = "127.0.0.1:5353"
  network   = "udp"
  max_flows = 77
}

tcp_route "web" {
  entrypoints = ["web"]
  service     = "app"
  tls         = "none"
}

udp_route "dns" {
  entrypoints  = ["dns"]
  service      = "dns"
  idle_timeout = "45s"
}

service "app" {
  balancer        = "weighted"
  proxy_protocol  = "v2"
  connect_timeout = "1500ms"
  fail_timeout    = "20s"
  backend "127.0.0.1:9001" {
    weight = 5
  }
  backend "localhost:9002" {
    weight = 2
  }
}

service "dns" {
  balancer       = "least_conn"
  proxy_protocol = "v2"
  backend "[::1]:53" {}
}
