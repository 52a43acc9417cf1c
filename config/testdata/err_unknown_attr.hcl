global {
  grace_perod = "5s"
}
log {
  levle = "info"
}
entrypoint "web" {
  adress = ":8080"
  timeouts {
    idel = "1m"
  }
}
service "app" {
  balancr = "random"
  backend "127.0.0.1:9000" {
    wieght = 2
    zzz    = 1
  }
}
