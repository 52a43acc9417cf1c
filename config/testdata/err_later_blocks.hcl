tls {
  min_version = "1.2"
  acme "le" {}
}
admin {
  address = "127.0.0.1:9901"
}
http_route "api" {
  service = "api"
}
middleware "limit" {}
quic_route "legacy" {}
