# The configuration the benchmark scripts run the server with (sourced):
# bench_config PORT DATA_DIR DATABASE_URL prints it; loopback, quiet logs,
# email and password signup without verification, rate limits off.
bench_config() { # PORT DATA_DIR DATABASE_URL
  cat <<TOML
[server]
bind = "127.0.0.1:$1"
data_dir = "$2"
log_level = "warn"
[database]
url = "$3"
[account]
login_methods = ["email"]
signup_fields = ["email*", "password1*"]
email_verification = "none"
rate_limits = false
[email]
backend = "file"
file_path = "$2/mail"
TOML
}
