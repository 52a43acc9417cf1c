# TCP-only settings on a udp entrypoint were silently ignored: PROXY
# headers are read on TCP only, and a flow's idle time is its udp_route's.
entrypoint "dns" {
  address = ":5353"
  network = "udp"
  proxy_protocol {
    trusted = ["127.0.0.1/32"]
  }
  timeouts {
    idle        = "5s"
    handshake   = "1s"
    read_header = "1s"
  }
}
udp_route "dns" {
  entrypoints = ["dns"]
  service     = "dns"
}
service "dns" {
  backend "127.0.0.1:53" {}
}
