entrypoint "small" {
  address          = ":8080"
  max_header_bytes = 1023
  trusted_proxies  = ["10.0.0.0/8", "not-an-ip"]
  http2 {
    max_concurrent_streams = 0
  }
  timeouts {
    write = "-1s"
  }
}
entrypoint "big" {
  address          = ":8081"
  max_header_bytes = 16777217
  http2 {
    max_concurrent_streams = 10001
    max_streams            = 1
  }
  http2 {}
  timeouts {
    write = "soon"
  }
}
entrypoint "dns" {
  address          = ":5353"
  network          = "udp"
  max_header_bytes = 4096
  trusted_proxies  = ["10.0.0.0/8"]
  http2 {
    max_concurrent_streams = 100
  }
  timeouts {
    write = "1s"
  }
}
http_route "r" {
  entrypoints = ["small", "big"]
  service     = "hello"
}
udp_route "u" {
  entrypoints = ["dns"]
  service     = "dns"
}
service "hello" {
  respond {}
}
service "dns" {
  backend "127.0.0.1:53" {}
}
