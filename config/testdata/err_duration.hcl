global { grace_period = "-1s" }
entrypoint "web" {
  address = ":8080"
  proxy_protocol {
    trusted = ["127.0.0.1"]
    timeout = "0s"
  }
  timeouts {
    handshake   = "10"
    read_header = "soon"
    idle        = "-5m"
  }
}
tcp_route "r" {
  entrypoints = ["web"]
  service     = "app"
}
entrypoint "dns" {
  address = ":53"
  network = "udp"
}
udp_route "u" {
  entrypoints  = ["dns"]
  service      = "app"
  idle_timeout = "0"
}
entrypoint "dns2" {
  address = ":54"
  network = "udp"
}
udp_route "v" {
  entrypoints  = ["dns2"]
  service      = "app"
  idle_timeout = 30
}
service "app" {
  connect_timeout = "0ms"
  fail_timeout    = "1 second"
  backend "127.0.0.1:9000" {}
}
