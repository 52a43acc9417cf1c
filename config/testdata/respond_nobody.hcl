# A 204 or 304 answer has no body: a body written there is never sent.
entrypoint "web" { address = ":8080" }
http_route "r" {
  entrypoints = ["web"]
  service     = "empty"
}
service "empty" {
  respond {
    status = 204
    body   = "never sent"
  }
}
