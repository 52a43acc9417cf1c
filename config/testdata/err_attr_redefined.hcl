entrypoint "web" {
  address = ":8080"
  address = ":8081"
}
