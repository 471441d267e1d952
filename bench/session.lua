-- GET auth/session with the app session token taken from $TOKEN.
wrk.method = "GET"
wrk.headers["X-Session-Token"] = os.getenv("TOKEN")
