tls {
  min_version = "1.2"
}
admin {
  address = "127.0.0.1:9901"
}
entrypoint "web" {
  address = ":8080"
  http3   = true
}
quic_route "legacy" {}
