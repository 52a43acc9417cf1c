entrypoint "web" { address = ":8443" }
tcp_route "names" {
  entrypoints = ["web"]
  sni = [
    "10.0.0.1",
    "[::1]",
    "*",
    "a*.example.com",
    "x.*.example.com",
    "*.*.example.com",
    "-bad.example.com",
    "bad-.example.com",
    "a..example.com",
    "",
    "bücher.example",
    "sp ace.example.com",
    "1.2.3.256",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.example.com",
  ]
  service = "pg"
}
tcp_route "dups" {
  entrypoints = ["web"]
  sni         = ["db.example.com", "DB.Example.COM.", "db.example.com"]
  alpn        = ["h2", "", "h2", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]
  service     = "pg"
}
tcp_route "empty" {
  entrypoints = ["web"]
  sni         = []
  alpn        = []
  service     = "pg"
}
tcp_route "types" {
  entrypoints = ["web"]
  sni         = "db.example.com"
  alpn        = [2]
  service     = "pg"
}
service "pg" {
  backend "127.0.0.1:5432" {}
}
