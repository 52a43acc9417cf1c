admin {
  address      = "192.0.2.1:9901"
  allow_remote = true
  basic_auth {
    users      = ["ops:plaintext", "ops:$2a$04$ukZWu3Uv0/mEMlTifWmsZu6wbBCB179P/ukDIhekrJr8Tt1NsDNpi"]
    users_file = "x"
  }
}
