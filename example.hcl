# example.hcl — proxynow's TCP and UDP layer on loopback.
#
#   make run                      # or: proxynow run -config example.hcl
#
# Two hops show the PROXY protocol end to end: "edge" (port 8080) forwards
# each connection to the "internal" entrypoint (port 8081) with a PROXY v2
# header, and "internal" trusts loopback, reads that header and forwards to
# your application on port 9000 knowing the real client address.
# Start any TCP server on 127.0.0.1:9000 to see bytes flow, for example
#   python3 -m http.server --bind 127.0.0.1 9000
# then  curl http://127.0.0.1:8080/
# Without one, proxynow still runs: each connection is closed at once and
# the log says no backend answered.
#
# UDP: port 5300 relays datagrams to a DNS server on 127.0.0.1:5301, e.g.
#   dnsmasq --no-daemon -C /dev/null --port=5301 --listen-address=127.0.0.1 \
#           --bind-interfaces --address=/example.test/127.0.0.42
#   dig @127.0.0.1 -p 5300 example.test

global {
  grace_period = "10s"
}

log {
  level  = "info"
  format = "text"
}

entrypoint "edge" {
  address         = "127.0.0.1:8080"
  max_connections = 10000
  timeouts {
    idle = "5m"
  }
}

entrypoint "internal" {
  address = "127.0.0.1:8081"
  proxy_protocol {
    trusted = ["127.0.0.0/8"]
    timeout = "5s"
  }
}

entrypoint "dns" {
  address   = "127.0.0.1:5300"
  network   = "udp"
  max_flows = 10000
}

tcp_route "edge" {
  entrypoints = ["edge"]
  service     = "internal"
}

tcp_route "app" {
  entrypoints = ["internal"]
  service     = "app"
}

udp_route "dns" {
  entrypoints  = ["dns"]
  service      = "dns"
  idle_timeout = "30s"
}

service "internal" {
  proxy_protocol = "v2"
  backend "127.0.0.1:8081" {}
}

service "app" {
  balancer        = "round_robin"
  connect_timeout = "5s"
  fail_timeout    = "10s"
  backend "127.0.0.1:9000" {}
}

service "dns" {
  backend "127.0.0.1:5301" {}
}
