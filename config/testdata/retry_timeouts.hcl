# per_try_timeout bounds the wait for response headers like
# response_header_timeout; one not shorter never fires: warned.
entrypoint "web" { address = ":8080" }
http_route "a" {
  entrypoints = ["web"]
  path_prefix = "/a/"
  service     = "long"
}
http_route "b" {
  entrypoints = ["web"]
  path_prefix = "/b/"
  service     = "default"
}
http_route "c" {
  entrypoints = ["web"]
  service     = "fine"
}
service "long" {
  response_header_timeout = "1s"
  backend "http://127.0.0.1:9000" {}
  retry { per_try_timeout = "5s" }
}
service "default" {
  backend "http://127.0.0.1:9000" {}
  retry { per_try_timeout = "1m" }
}
service "fine" {
  backend "http://127.0.0.1:9000" {}
  retry { per_try_timeout = "2s" }
}
