# Two CAs: http-01 with the routes' names, tls-alpn-01 with listed ones.
entrypoint "web" {
  address = ":8080"
}

entrypoint "websecure" {
  address = ":8443"
}

tls {
  acme "le" {
    email     = "ops@example.com"
    challenge = "http-01"
    auto      = true
  }
  acme "staging" {
    directory = "https://acme-staging-v02.api.letsencrypt.org/directory"
    storage   = "state/acme"
    domains   = ["static.example.com"]
  }
}

http_route "site" {
  entrypoints = ["web", "websecure"]
  hosts       = ["www.example.com", "*.apps.example.com", "static.example.com", "127.0.0.1"]
  service     = "app"
}

http_route "api" {
  entrypoints = ["websecure"]
  hosts       = ["API.example.com", "www.example.com"]
  service     = "app"
}

service "app" {
  backend "http://127.0.0.1:9001" {}
}
