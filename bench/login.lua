-- POST auth/login with the benchmark user's credentials (Argon2id verify).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"bench@example.com","password":"correct horse battery"}'
