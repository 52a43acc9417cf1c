# One entrypoint, one http_route, a built-in answer: every HTTP default.
entrypoint "web" {
  address = ":8080"
}

http_route "hello" {
  entrypoints = ["web"]
  service     = "hello"
}

service "hello" {
  respond {
    body = "hello from proxynow\n"
  }
}
