entrypoint "websecure" { address = ":8443" }
tls {
  certificate "missing" {
    cert_file = "certs/missing.crt"
    key_file  = "certs/missing.key"
  }
  certificate "mismatch" {
    cert_file = "certs/site.crt"
    key_file  = "certs/other.key"
  }
  certificate "notpem" {
    cert_file = "certs/notpem.txt"
    key_file  = "certs/site.key"
  }
  certificate "swapped" {
    cert_file = "certs/site.key"
    key_file  = "certs/site.crt"
  }
  certificate "dir" {
    cert_file = "certs"
    key_file  = "/dev/null"
  }
}
tcp_route "t" {
  entrypoints = ["websecure"]
  sni         = ["db.example.com"]
  tls         = "terminate"
  service     = "a"
}
tcp_route "u" {
  entrypoints = ["websecure"]
  sni         = ["db2.example.com"]
  tls         = "terminate"
  service     = "b"
}
tcp_route "v" {
  entrypoints = ["websecure"]
  sni         = ["db3.example.com"]
  tls         = "terminate"
  service     = "c"
}
service "a" {
  backend "tls://db.internal:5432" {}
  tls {
    ca_file     = "certs/missing.pem"
    server_name = "10.0.0.1"
  }
}
service "b" {
  backend "tls://db.internal:5432" {}
  tls {
    ca_file     = "certs/site.key"
    server_name = "*.db.internal"
  }
}
service "c" {
  backend "tls://db.internal:5432" {}
  tls {
    ca_file     = ""
    server_name = "bad..name"
    sni         = "x"
  }
}
