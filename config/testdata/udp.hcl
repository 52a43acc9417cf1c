entrypoint "dns" {
  address   = "[::1]:5353"
  network   = "udp"
  max_flows = 500
}

udp_route "dns" {
  entrypoints  = ["dns"]
  service      = "resolvers"
  idle_timeout = "1m"
}

service "resolvers" {
  balancer       = "random"
  proxy_protocol = "v2"
  backend "10.0.0.53:53" {}
  backend "10.0.1.53:53" {}
}
