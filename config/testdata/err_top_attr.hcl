grace_period = "10s"
entrypoint "web" { address = ":8080" }
