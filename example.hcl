# example.hcl — proxynow on loopback, runnable with no other setup.
#
#   make run                      # or: proxynow run -config example.hcl
#   curl http://127.0.0.1:8080/   # answered by proxynow itself
#
# HTTP (port 8080): "/" is answered by a built-in respond service; "/app/"
# is proxied to your application on 127.0.0.1:9000 (a 502 until one runs;
# the path is passed as it is, so serve a directory holding app/:
#   mkdir -p /tmp/site/app && python3 -m http.server --bind 127.0.0.1 9000 --directory /tmp/site
# then  curl http://127.0.0.1:8080/app/ ). h2c works too:
#   curl --http2-prior-knowledge http://127.0.0.1:8080/
#
# TCP (port 8081): each connection goes with a PROXY v2 header to the
# "internal" entrypoint (port 8082), which trusts loopback, reads that header
# and forwards to a TCP server on 127.0.0.1:9001 knowing the real client
# address. Without a server there, connections are closed and logged.
#
# UDP (port 5300): datagrams are relayed to a DNS server on 5301, e.g.
#   dnsmasq --no-daemon -C /dev/null --port=5301 --listen-address=127.0.0.1 \
#           --bind-interfaces --address=/example.test/127.0.0.42
#   dig @127.0.0.1 -p 5300 example.test

global {
  grace_period = "10s"
}

log {
  level  = "info"
  format = "text"
  # One JSON line per HTTP request, TCP connection and UDP flow, on stdout.
  access {
    format = "json"
    path   = "-"
  }
}

# Operations endpoint, loopback only:
#   curl http://127.0.0.1:9901/metrics      # Prometheus
#   curl http://127.0.0.1:9901/upstreams    # backends, health, breakers
admin {
  address = "127.0.0.1:9901"
}

entrypoint "web" {
  address          = "127.0.0.1:8080"
  max_header_bytes = 65536
  timeouts {
    read_header = "10s"
    idle        = "2m"
  }
}

entrypoint "tcp" {
  address         = "127.0.0.1:8081"
  max_connections = 10000
  timeouts {
    idle = "5m"
  }
}

entrypoint "internal" {
  address = "127.0.0.1:8082"
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

http_route "hello" {
  entrypoints = ["web"]
  path_prefix = "/"
  service     = "hello"
}

http_route "app" {
  entrypoints = ["web"]
  path_prefix = "/app/"
  methods     = ["GET", "HEAD", "POST"]
  service     = "app"
}

service "hello" {
  respond {
    status  = 200
    body    = "hello from proxynow\n"
    headers = { "Cache-Control" = "no-store" }
  }
}

service "app" {
  balancer = "round_robin"
  backend "http://127.0.0.1:9000" {}
  retry {
    attempts = 2
  }
}

tcp_route "tcp" {
  entrypoints = ["tcp"]
  service     = "internal"
}

tcp_route "internal" {
  entrypoints = ["internal"]
  service     = "tcp-app"
}

udp_route "dns" {
  entrypoints  = ["dns"]
  service      = "dns"
  idle_timeout = "30s"
}

service "internal" {
  proxy_protocol = "v2"
  backend "127.0.0.1:8082" {}
}

service "tcp-app" {
  connect_timeout = "5s"
  fail_timeout    = "10s"
  backend "127.0.0.1:9001" {}
}

service "dns" {
  backend "127.0.0.1:5301" {}
}
