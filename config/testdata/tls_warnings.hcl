entrypoint "websecure" { address = ":8443" }
tls {
  certificate "old" {
    cert_file = "certs/expired.crt"
    key_file  = "certs/expired.key"
  }
}
tcp_route "t" {
  entrypoints = ["websecure"]
  tls         = "terminate"
  service     = "plain"
}
tcp_route "p" {
  entrypoints = ["websecure"]
  sni         = ["db.example.com"]
  tls         = "terminate"
  service     = "insecure"
}
service "plain" {
  backend "127.0.0.1:9000" {}
  tls {
    server_name = "plain.internal"
  }
}
service "insecure" {
  backend "tls://db.internal:5432" {}
  tls {
    ca_file              = "certs/ca.pem"
    insecure_skip_verify = true
  }
}
