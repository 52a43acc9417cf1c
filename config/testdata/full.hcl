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

entrypoint "websecure" {
  address = "0.0.0.0:8443"
}

tls {
  min_version = "1.3"
  certificate "site" {
    cert_file = "certs/site.crt"
    key_file  = "certs/site.key"
    default   = true
  }
  certificate "other" {
    cert_file = "certs/other.crt"
    key_file  = "certs/other.key"
  }
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

tcp_route "db" {
  entrypoints = ["websecure"]
  sni         = ["DB.Example.com.", "*.db.example.com"]
  alpn        = ["postgresql"]
  tls         = "terminate"
  service     = "pg"
}

tcp_route "legacy" {
  entrypoints = ["websecure"]
  sni         = ["legacy.example.com"]
  tls         = "passthrough"
  service     = "legacy"
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

service "pg" {
  backend "tls://db1.internal:5432" {}
  tls {
    server_name = "DB.internal"
    ca_file     = "certs/ca.pem"
  }
}

service "legacy" {
  backend "tls://192.0.2.10:443" {}
  tls {
    insecure_skip_verify = true
  }
}
