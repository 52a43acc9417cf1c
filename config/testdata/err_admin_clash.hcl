entrypoint "web" {
  address = ":8080"
}

admin {
  address = "127.0.0.1:8080"
}
