//! The admin command line (`allauth-server users|sessions|outbox|config …`):
//! what Django's admin gives allauth's operators, on the same database and
//! configuration as `serve`. Off the request path: errors are `anyhow`,
//! reported with a non-zero exit. Output is plain text, one record per line
//! where there are several. A user is named by id, username or address.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Subcommand;

use crate::app::account::accounts;
use crate::app::security::password_validation;
use crate::app::security::passwords::Passwords;
use crate::config::Config;
use crate::db::{self, authenticators, email_addresses, mail_outbox, sessions, users, Db};
use crate::email::sender::GIVEN_UP;

#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// List users: id, username, primary address, active, last login.
    List {
        /// At most this many, newest first.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Show one user with their addresses, second factors and sessions.
    Show { user: String },
    /// Create a user (active). The password, if any, is read from stdin.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: Option<String>,
        /// Mark the address verified.
        #[arg(long)]
        verified: bool,
        /// Read a password from the first line of stdin (else the user has none).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password from the first line of stdin; ends their sessions.
    SetPassword { user: String },
    /// Stop a user from logging in; ends their sessions.
    Deactivate { user: String },
    /// Let a deactivated user log in again.
    Activate { user: String },
    /// Delete a user with everything of theirs.
    Delete {
        user: String,
        /// Confirm the deletion.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum SessionsCommand {
    /// End every session of a user.
    Revoke {
        #[arg(long)]
        user: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum OutboxCommand {
    /// Counts of the mail outbox: waiting, overdue, given up, sent (kept).
    Status,
    /// Try given-up mail again now (all of it, or one by id).
    Retry {
        #[arg(long)]
        id: Option<i64>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Validate a configuration file (with the environment) and print the
    /// effective settings, secrets masked.
    Check { file: PathBuf },
}

async fn open(config: &Config) -> Result<Db> {
    // One connection, so that the pool never opens another in the
    // background (a connection being opened while the process exits can
    // crash libpq's TLS teardown).
    let url = config.database.url.clone();
    let db = tokio::task::spawn_blocking(move || Db::connect(&url, 1))
        .await
        .context("database connect task")??;
    db.migrate().await?;
    keep_until_exit(&db);
    Ok(db)
}

/// Keeps the connection pool alive until the process exits. Dropping it
/// closes PostgreSQL connections on the pool's own threads, which may then
/// still run while the C library's exit handlers tear down libpq's TLS
/// state: seen as a crash (SIGSEGV) at exit about one run in ten.
pub fn keep_until_exit(db: &Db) {
    std::mem::forget(db.clone());
}

/// The user named by `who`: an id, a username, or an address.
fn find(conn: &mut db::DbConnection, who: &str) -> Result<users::User, db::DbError> {
    if let Ok(id) = who.parse::<i64>() {
        if let Some(user) = users::by_id(conn, id)? {
            return Ok(user);
        }
    }
    if let Some(user) = users::by_username_lower(conn, &users::fold_username(who))? {
        return Ok(user);
    }
    let rows = email_addresses::by_email_lower(conn, &email_addresses::fold_email(who))?;
    match rows.as_slice() {
        [row] => users::by_id(conn, row.user_id)?
            .ok_or(db::DbError::Query(diesel::result::Error::NotFound)),
        _ => Err(db::DbError::Query(diesel::result::Error::NotFound)),
    }
}

async fn named_user(db: &Db, who: &str) -> Result<users::User> {
    let name = who.to_owned();
    db.run(move |conn| find(conn, &name)).await.map_err(|e| {
        if e.is_not_found() {
            anyhow::anyhow!("no user (or more than one) is named {who:?}")
        } else {
            e.into()
        }
    })
}

fn read_password(config: &Config) -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        bail!("no password on stdin");
    }
    if let Err(problems) = password_validation::validate_password(&config.account, &password, &[]) {
        let text: Vec<String> = problems.into_iter().map(|p| p.message).collect();
        bail!("the password is refused: {}", text.join(" "));
    }
    Ok(password)
}

fn millis_text(ms: Option<i64>) -> String {
    ms.map_or_else(
        || "-".to_owned(),
        |ms| {
            let at = std::time::UNIX_EPOCH
                + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
            httpdate::fmt_http_date(at)
        },
    )
}

pub async fn users(config: Config, command: UsersCommand) -> Result<String> {
    let db = open(&config).await?;
    let now = db::now_millis();
    match command {
        UsersCommand::List { limit } => {
            let rows = db
                .run(move |conn| {
                    let all = users::newest(conn, limit)?;
                    let mut out = Vec::new();
                    for user in all {
                        let email =
                            email_addresses::primary_for_user(conn, user.id)?.map(|a| a.email);
                        out.push((user, email));
                    }
                    Ok(out)
                })
                .await?;
            let mut out = String::from("id\tusername\temail\tactive\tlast_login\n");
            for (user, email) in rows {
                out.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\n",
                    user.id,
                    user.username.as_deref().unwrap_or("-"),
                    email.as_deref().unwrap_or("-"),
                    user.is_active,
                    millis_text(user.last_login),
                ));
            }
            Ok(out)
        }
        UsersCommand::Show { user } => {
            let user = named_user(&db, &user).await?;
            let id = user.id;
            let (addresses, kinds, live) = db
                .run(move |conn| {
                    Ok((
                        email_addresses::for_user(conn, id)?,
                        authenticators::types_for_user(conn, id)?,
                        sessions::for_user(conn, id, now)?.len(),
                    ))
                })
                .await?;
            let mut out = format!(
                "id: {}\nusername: {}\nactive: {}\nusable password: {}\njoined: {}\nlast login: {}\n",
                user.id,
                user.username.as_deref().unwrap_or("-"),
                user.is_active,
                user.has_usable_password(),
                millis_text(Some(user.date_joined)),
                millis_text(user.last_login),
            );
            for a in addresses {
                out.push_str(&format!(
                    "email: {}{}{}\n",
                    a.email,
                    if a.primary { " (primary)" } else { "" },
                    if a.verified {
                        " (verified)"
                    } else {
                        " (unverified)"
                    },
                ));
            }
            let mut kinds = kinds;
            kinds.sort();
            out.push_str(&format!(
                "second factors: {}\nsessions: {live}\n",
                if kinds.is_empty() {
                    "-".to_owned()
                } else {
                    kinds.join(", ")
                }
            ));
            Ok(out)
        }
        UsersCommand::Create {
            username,
            email,
            verified,
            password_stdin,
        } => {
            // The signup form's rules for the username and the address.
            let problems = accounts::username_field_errors(&config, &username);
            if let Some(problem) = problems.first() {
                bail!("the username is refused: {}", problem.message);
            }
            let username = accounts::stored_username(&config, &username);
            let email = match email {
                Some(email) => Some(
                    accounts::clean_email_field(&config, &email, "email")
                        .map_err(|e| anyhow::anyhow!("the address is refused: {}", e.message))?,
                ),
                None => None,
            };
            let hash = if password_stdin {
                let password = read_password(&config)?;
                Some(
                    Passwords::new(&config.account)
                        .hash(&password)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?,
                )
            } else {
                None
            };
            let created = db
                .transaction(move |conn| {
                    let user =
                        users::insert(conn, &users::NewUser::new(Some(&username), hash, now))?;
                    if let Some(email) = &email {
                        email_addresses::insert(
                            conn,
                            &email_addresses::NewEmailAddress::new(user.id, email, verified, true),
                        )?;
                    }
                    Ok(user.id)
                })
                .await;
            match created {
                Ok(id) => Ok(format!("created user {id}\n")),
                Err(e) if e.is_unique_violation() => {
                    bail!("the username, or the verified address, is taken")
                }
                Err(e) => Err(e.into()),
            }
        }
        UsersCommand::SetPassword { user } => {
            let user = named_user(&db, &user).await?;
            let password = read_password(&config)?;
            let hash = Passwords::new(&config.account)
                .hash(&password)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let id = user.id;
            let ended = db
                .transaction(move |conn| {
                    users::set_password_hash(conn, id, Some(&hash))?;
                    sessions::revoke_for_user(conn, id, None)
                })
                .await?;
            Ok(format!(
                "password set for user {id}; {ended} sessions ended\n"
            ))
        }
        UsersCommand::Deactivate { user } => {
            let id = named_user(&db, &user).await?.id;
            let ended = db
                .transaction(move |conn| {
                    users::set_active(conn, id, false)?;
                    sessions::revoke_for_user(conn, id, None)
                })
                .await?;
            Ok(format!("user {id} deactivated; {ended} sessions ended\n"))
        }
        UsersCommand::Activate { user } => {
            let id = named_user(&db, &user).await?.id;
            db.run(move |conn| users::set_active(conn, id, true))
                .await?;
            Ok(format!("user {id} activated\n"))
        }
        UsersCommand::Delete { user, yes } => {
            let id = named_user(&db, &user).await?.id;
            if !yes {
                bail!("deleting user {id} needs --yes");
            }
            db.run(move |conn| users::delete(conn, id)).await?;
            Ok(format!("user {id} deleted\n"))
        }
    }
}

pub async fn sessions(config: Config, command: SessionsCommand) -> Result<String> {
    let db = open(&config).await?;
    match command {
        SessionsCommand::Revoke { user } => {
            let id = named_user(&db, &user).await?.id;
            let ended = db
                .run(move |conn| sessions::revoke_for_user(conn, id, None))
                .await?;
            Ok(format!("{ended} sessions of user {id} ended\n"))
        }
    }
}

pub async fn outbox(config: Config, command: OutboxCommand) -> Result<String> {
    let db = open(&config).await?;
    let now = db::now_millis();
    match command {
        OutboxCommand::Status => {
            let overdue_before = now - crate::app::health::STUCK_AFTER_MS;
            let status = db
                .run(move |conn| mail_outbox::status(conn, GIVEN_UP, overdue_before))
                .await?;
            Ok(format!(
                "waiting: {}\noverdue: {}\ngiven up: {}\nsent (kept): {}\n",
                status.waiting, status.overdue, status.given_up, status.sent
            ))
        }
        OutboxCommand::Retry { id } => {
            let retried = db
                .run(move |conn| mail_outbox::retry_given_up(conn, id, now, GIVEN_UP))
                .await?;
            Ok(format!("{retried} mails will be tried again\n"))
        }
    }
}

pub fn config_check(file: &std::path::Path) -> Result<String> {
    // Secrets, and the database URL's password, print as [redacted].
    let config = Config::load(Some(file))?;
    Ok(format!("{config:#?}\n"))
}
