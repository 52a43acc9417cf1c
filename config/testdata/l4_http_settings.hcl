# HTTP settings on an entrypoint that no http_route uses do nothing: only
# http_routes make an entrypoint serve HTTP. Each is warned about.
entrypoint "db" {
  address          = ":5432"
  max_header_bytes = 4096
  trusted_proxies  = ["10.0.0.0/8"]
  http2 {
    max_concurrent_streams = 10
  }
  timeouts {
    read_header = "1s"
    write       = "1s"
  }
}
tcp_route "db" {
  entrypoints = ["db"]
  service     = "pg"
}
service "pg" {
  backend "127.0.0.1:5433" {}
}
