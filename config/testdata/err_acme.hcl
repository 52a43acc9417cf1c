entrypoint "websecure" {
  address = ":8443"
}

tls {
  acme "a" {
    email         = "not an address"
    directory     = "http://acme.example/dir"
    key_type      = "ec521"
    challenge     = "dns-01"
    dns_provider  = "cloudflair"
    dns_resolvers = ["1.1.1.1:x:y"]
    domains       = ["a.example.com", "*.b.example.com"]
    renew_before  = "0s"
    ca_file       = "missing-ca.pem"
  }
  acme "b" {
    domains       = ["*.c.example.com", "a.example.com"]
    dns_provider  = "route53"
    dns_resolvers = ["9.9.9.9"]
    auto          = true
  }
  acme "c" {
    challenge = "http-01"
    storage   = ""
    auto      = true
  }
  acme "d" {
    challenge = "dns-01"
    dns_provider = "gcloud"
    domains   = []
  }
  acme "e" {
    challenge = "dns-0l"
  }
  acme "f" {
    challenge    = "dns-01"
    dns_provider = "zzzzzzzz"
    domains      = ["f.example.com"]
  }
  acme "g" {
    on_demand {
      rate = 0
    }
  }
  acme "h" {
    on_demand {
      ask      = "ftp://x"
      interval = "-1s"
    }
  }
}

tcp_route "t" {
  entrypoints = ["websecure"]
  sni         = ["db.example.com"]
  tls         = "terminate"
  service     = "db"
}

service "db" {
  backend "127.0.0.1:5432" {}
}

