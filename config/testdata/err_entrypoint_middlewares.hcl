# Entrypoint middlewares run on the requests of its http_routes: on an
# entrypoint without any (a Traefik-style redirect entrypoint) they would
# never run, so validate refuses them.
entrypoint "web" {
  address     = ":8080"
  middlewares = ["tohttps"]
}
entrypoint "websecure" {
  address     = ":8443"
  middlewares = ["tohttps"]
}
http_route "site" {
  entrypoints = ["websecure"]
  service     = "s"
}
middleware "tohttps" {
  redirect_scheme {}
}
service "s" {
  backend "http://127.0.0.1:9000" {}
}
