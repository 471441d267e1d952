//! `allauth-server import django`: copies a django-allauth project's users
//! into this server's database so that every user keeps logging in as
//! before — users with their ids and password hashes as stored, addresses
//! under allauth's rules, second factors (TOTP secret, recovery-code seed
//! and used mask, WebAuthn credentials re-derived from their registration),
//! provider accounts and tokens. Sessions are not imported (Django signs
//! them with its `SECRET_KEY`; users log in once more).
//!
//! Idempotent: users keep their ids and every other row is found again by
//! its natural key, so a second run updates. Rows are read by id in batches;
//! each batch is one transaction and each row a savepoint inside it, so one
//! refused row never takes its batch down. `--dry-run` runs everything in
//! one transaction and rolls it back. A row that cannot be imported is
//! refused with its reason, all listed in the report. Off the request path:
//! errors are `anyhow` (see docs/migrating-from-allauth.md).

pub mod django;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use crate::app::mfa;
use crate::app::security::sealed;
use crate::config::Config;
use crate::db::authenticators;
use crate::db::import::{self as writes, ImportedAuthenticator, ImportedUser, Upsert};
use crate::db::{self, Db, DbConnection, DbError};
use django::Source;

#[derive(Subcommand, Debug)]
pub enum ImportCommand {
    /// Import a django-allauth project's users, addresses, second factors
    /// and provider accounts from its database.
    Django(DjangoArgs),
}

#[derive(Args, Debug, Clone)]
pub struct DjangoArgs {
    /// The Django database: postgres://… or sqlite://path (read only).
    #[arg(long = "from", value_name = "URL")]
    pub from: String,
    /// This server's database (overrides [database] url).
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// This server's configuration (its server.secret_key seals the second
    /// factors; its WebAuthn relying party must be the Django site's).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Report what would be imported and refused; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The user table of a custom user model.
    #[arg(long, value_name = "TABLE", default_value = "auth_user")]
    pub user_table: String,
    /// A column of the user table under another name, FIELD=COLUMN (fields:
    /// id, username, password, email, first_name, last_name, is_active,
    /// date_joined, last_login); FIELD= for a field the model lacks.
    #[arg(long = "user-column", value_name = "FIELD=COLUMN")]
    pub user_columns: Vec<String>,
    /// Rows per transaction.
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub batch_size: i64,
    /// No progress line, even on a terminal.
    #[arg(long)]
    pub quiet: bool,
}

/// What became of the rows of one source table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub inserted: u64,
    pub updated: u64,
    pub refused: u64,
}

/// A row left out, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub table: String,
    pub id: i64,
    pub reason: String,
}

/// What an import did (or, dry, would do).
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub dry_run: bool,
    /// By source table, in the order imported.
    pub counts: BTreeMap<usize, (String, Counts)>,
    pub refused: Vec<Refusal>,
    /// Imported, but worth knowing (a hash format never verified here, a
    /// second primary address made non-primary…).
    pub warnings: Vec<String>,
    /// Tables not imported and why.
    pub skipped: Vec<String>,
}

impl Report {
    fn counts(&mut self, order: usize, table: &str) -> &mut Counts {
        &mut self
            .counts
            .entry(order)
            .or_insert_with(|| (table.to_owned(), Counts::default()))
            .1
    }

    fn count(&mut self, order: usize, table: &str, upsert: Upsert) {
        let counts = self.counts(order, table);
        match upsert {
            Upsert::Inserted => counts.inserted += 1,
            Upsert::Updated => counts.updated += 1,
        }
    }

    fn refuse(&mut self, order: usize, table: &str, id: i64, reason: impl Into<String>) {
        self.counts(order, table).refused += 1;
        self.refused.push(Refusal {
            table: table.to_owned(),
            id,
            reason: reason.into(),
        });
    }

    /// The summary printed at the end.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.dry_run {
            out.push_str("dry run: nothing was written\n");
        }
        for (table, c) in self.counts.values() {
            out.push_str(&format!(
                "{table}: {} imported ({} new, {} updated), {} refused\n",
                c.inserted + c.updated,
                c.inserted,
                c.updated,
                c.refused
            ));
        }
        for skipped in &self.skipped {
            out.push_str(&format!("not imported: {skipped}\n"));
        }
        for warning in &self.warnings {
            out.push_str(&format!("warning: {warning}\n"));
        }
        for r in &self.refused {
            out.push_str(&format!("refused: {} id={}: {}\n", r.table, r.id, r.reason));
        }
        out
    }
}

/// A progress line on stderr when it is a terminal.
struct Progress {
    on: bool,
}

impl Progress {
    fn show(&self, table: &str, done: u64, total: i64) {
        if self.on {
            eprint!("\r\x1b[K{table}: {done}/{total}");
        }
    }

    fn end(&self) {
        if self.on {
            eprint!("\r\x1b[K");
        }
    }
}

/// Runs `import django` and returns the report's text.
pub async fn django(args: DjangoArgs) -> Result<String> {
    let report = run_django(args).await?;
    Ok(report.render())
}

/// Runs `import django`.
pub async fn run_django(args: DjangoArgs) -> Result<Report> {
    let mut config = Config::load(args.config.as_deref())?;
    if let Some(url) = &args.database_url {
        config.database.url = url.clone();
    }
    config.validate()?;
    if config.server.secret_key.is_none() {
        config.server.secret_key = Some(
            crate::start::persistent_secret_key(&config.server.data_dir)
                .context("server.secret_key")?,
        );
    }
    let users = django::UserTable::with(Some(&args.user_table), &args.user_columns)?;
    let from = args.from.clone();
    let source = tokio::task::spawn_blocking(move || Source::open(&from))
        .await
        .context("source connect task")??;
    let url = config.database.url.clone();
    let target = tokio::task::spawn_blocking(move || Db::connect(&url, 1))
        .await
        .context("database connect task")??;
    target.migrate().await?;
    crate::admin::keep_until_exit(&target);
    let importer = Importer {
        config,
        users,
        batch: args.batch_size.max(1),
        progress: Progress {
            on: !args.quiet && std::io::stderr().is_terminal(),
        },
        report: Report {
            dry_run: args.dry_run,
            ..Report::default()
        },
        source,
        emails: HashMap::new(),
        with_addresses: HashSet::new(),
        primaries: HashSet::new(),
    };
    let dry_run = args.dry_run;
    // `Db::run` wants a closure it may call again on a lost connection;
    // the import runs once (a lost connection ends it with an error).
    let slot = std::sync::Arc::new(std::sync::Mutex::new(Some(importer)));
    target
        .run(move |conn| {
            let importer = slot.lock().ok().and_then(|mut s| s.take());
            Ok(match importer {
                Some(importer) => importer.run(conn, dry_run),
                None => Err(anyhow::anyhow!("the database connection was lost")),
            })
        })
        .await?
}

struct Importer {
    config: Config,
    users: django::UserTable,
    batch: i64,
    progress: Progress,
    report: Report,
    source: Source,
    /// `auth_user.email` by user, for allauth's fallback.
    emails: HashMap<i64, String>,
    /// Users with rows in `account_emailaddress`.
    with_addresses: HashSet<i64>,
    /// Users given a primary address by this run.
    primaries: HashSet<i64>,
}

/// Refuses a row whose user is not here (refused, or not in the source).
fn require_user(conn: &mut DbConnection, user_id: i64) -> std::result::Result<(), String> {
    match writes::user_exists(conn, user_id) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!("its user {user_id} was not imported")),
        Err(e) => Err(e.to_string()),
    }
}

/// Reads up to `limit` rows of a table with ids above `after`.
type Reader<'a, R> = &'a dyn Fn(&mut Source, i64, i64) -> Result<Vec<R>>;

/// Marks the dry run's rollback.
const DRY_RUN: &str = "dry run";

/// What to do with one source row: done (counted), or refused with a reason.
type RowResult = std::result::Result<Upsert, String>;

impl Importer {
    fn run(mut self, conn: &mut DbConnection, dry_run: bool) -> Result<Report> {
        if !dry_run {
            self.import_all(conn)?;
            return Ok(self.report);
        }
        let mut outcome = None;
        let rolled_back = db::transaction(conn, |conn| {
            outcome = Some(self.import_all(conn));
            Err::<(), _>(DbError::Config(DRY_RUN.into()))
        });
        match (outcome, rolled_back) {
            (Some(Ok(())), Err(DbError::Config(m))) if m == DRY_RUN => Ok(self.report),
            (Some(Err(e)), _) => Err(e),
            (_, Err(e)) => Err(e.into()),
            (_, Ok(())) => Ok(self.report),
        }
    }

    /// `server.secret_key`, which seals secrets at rest.
    fn secret(&self) -> String {
        self.config
            .server
            .secret_key
            .as_ref()
            .map(|s| s.expose().to_owned())
            .unwrap_or_default()
    }

    fn import_all(&mut self, conn: &mut DbConnection) -> Result<()> {
        self.import_users(conn)?;
        self.import_addresses(conn)?;
        self.import_authenticators(conn)?;
        self.import_social_accounts(conn)?;
        self.import_social_tokens(conn)?;
        if self.source.has_table(django::SESSION_TABLE) {
            let n = self.source.count(django::SESSION_TABLE)?;
            self.report.skipped.push(format!(
                "{} ({n} sessions): Django signs session data with its SECRET_KEY and \
                 this server keeps its own sessions; users log in once more",
                django::SESSION_TABLE
            ));
        }
        writes::move_sequences_past_ids(conn)?;
        self.progress.end();
        Ok(())
    }

    /// Reads batches of `table` with `read` and imports each row with
    /// `import` in one transaction per batch, a savepoint per row.
    fn batches<R>(
        &mut self,
        conn: &mut DbConnection,
        order: usize,
        table: &str,
        read: Reader<'_, R>,
        id_of: fn(&R) -> i64,
        import: fn(&mut Importer, &mut DbConnection, &R) -> RowResult,
    ) -> Result<()> {
        if !self.source.has_table(table) {
            self.report
                .skipped
                .push(format!("{table}: no such table in the Django database"));
            return Ok(());
        }
        let total = self.source.count(table)?;
        self.report.counts(order, table);
        let mut after = 0i64;
        let mut done = 0u64;
        loop {
            let rows = read(&mut self.source, after, self.batch)?;
            let Some(last) = rows.last() else {
                break;
            };
            after = id_of(last);
            db::transaction(conn, |conn| {
                for row in &rows {
                    let mut outcome = None;
                    let saved = db::transaction(conn, |conn| match import(self, conn, row) {
                        Ok(upsert) => Ok(upsert),
                        Err(reason) => {
                            outcome = Some(reason);
                            Err(DbError::Config(String::new()))
                        }
                    });
                    match (saved, outcome) {
                        (Ok(upsert), _) => self.report.count(order, table, upsert),
                        (Err(_), Some(reason)) => {
                            self.report.refuse(order, table, id_of(row), reason)
                        }
                        (Err(e), None) => {
                            self.report.refuse(order, table, id_of(row), e.to_string())
                        }
                    }
                }
                Ok(())
            })?;
            done += rows.len() as u64;
            self.progress.show(table, done, total);
        }
        Ok(())
    }

    fn import_users(&mut self, conn: &mut DbConnection) -> Result<()> {
        let table = self.users.table.clone();
        if !self.source.has_table(&table) {
            anyhow::bail!("no user table {table:?} in the Django database (see --user-table)");
        }
        let users = self.users.clone();
        self.batches(
            conn,
            0,
            &table,
            &move |source, after, limit| django::users(source, &users, after, limit),
            |r| r.id,
            Importer::user,
        )
    }

    fn user(&mut self, conn: &mut DbConnection, row: &django::UserRow) -> RowResult {
        let db_err = |e: DbError| e.to_string();
        let username = row
            .username
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty());
        let username_lower = username.map(crate::db::users::fold_username);
        if let Some(lower) = &username_lower {
            if let Some(other) = writes::user_with_username(conn, lower).map_err(db_err)? {
                if other != row.id {
                    return Err(format!(
                        "username {:?} is taken here by user {other} (usernames are unique \
                         regardless of case)",
                        username.unwrap_or_default()
                    ));
                }
            }
        }
        let password = row
            .password
            .as_deref()
            .filter(|p| !p.is_empty() && !p.starts_with('!'));
        if let Some(hash) = password {
            let algorithm = hash.split('$').next().unwrap_or_default();
            let known = [
                "pbkdf2_sha256",
                "pbkdf2_sha1",
                "argon2",
                "bcrypt_sha256",
                "bcrypt",
                "scrypt",
                "",
            ];
            if !known.contains(&algorithm) {
                self.report.warnings.push(format!(
                    "user {}: password hash of type {algorithm:?} is not verified by this \
                     server; the user must reset the password",
                    row.id
                ));
            }
        }
        let now = db::now_millis();
        let date_joined = row
            .date_joined
            .as_deref()
            .and_then(django::parse_timestamp)
            .unwrap_or(now);
        let user = ImportedUser {
            id: row.id,
            username: username.map(str::to_owned),
            username_lower,
            password_hash: password.map(str::to_owned),
            is_active: row.is_active.is_none_or(|a| a != 0),
            date_joined,
            last_login: row.last_login.as_deref().and_then(django::parse_timestamp),
            first_name: row.first_name.clone().unwrap_or_default(),
            last_name: row.last_name.clone().unwrap_or_default(),
        };
        let upsert = writes::upsert_user(conn, &user).map_err(db_err)?;
        if let Some(email) = row
            .email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            self.emails.insert(row.id, email.to_owned());
        }
        Ok(upsert)
    }

    fn import_addresses(&mut self, conn: &mut DbConnection) -> Result<()> {
        self.batches(
            conn,
            1,
            django::ADDRESS_TABLE,
            &django::addresses,
            |r| r.id,
            Importer::address,
        )?;
        // allauth's fallback: a user without rows there has the address of
        // the user table, unverified.
        let mut fallback: Vec<(i64, String)> = self
            .emails
            .iter()
            .filter(|(id, _)| !self.with_addresses.contains(id))
            .map(|(id, e)| (*id, e.clone()))
            .collect();
        fallback.sort();
        let table = format!("{}.email", self.users.table);
        for chunk in fallback.chunks(usize::try_from(self.batch).unwrap_or(500)) {
            db::transaction(conn, |conn| {
                for (user_id, email) in chunk {
                    match db::transaction(conn, |conn| {
                        writes::upsert_address(conn, *user_id, email, false, true)
                    }) {
                        Ok(upsert) => self.report.count(2, &table, upsert),
                        Err(e) => self.report.refuse(2, &table, *user_id, e.to_string()),
                    }
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    fn address(&mut self, conn: &mut DbConnection, row: &django::AddressRow) -> RowResult {
        let db_err = |e: DbError| e.to_string();
        self.with_addresses.insert(row.user_id);
        require_user(conn, row.user_id)?;
        let email = row.email.trim();
        if email.is_empty() || !email.contains('@') {
            return Err(format!("{email:?} is not an address"));
        }
        let verified = row.verified != 0;
        if verified {
            let lower = crate::db::email_addresses::fold_email(email);
            if let Some(other) =
                writes::verified_elsewhere(conn, row.user_id, &lower).map_err(db_err)?
            {
                return Err(format!(
                    "{email} is verified by user {other} too; a verified address belongs \
                     to one account"
                ));
            }
        }
        let mut primary = row.primary != 0;
        if primary && !self.primaries.insert(row.user_id) {
            self.report.warnings.push(format!(
                "{} id={}: user {} has another primary address; this one is imported \
                 as not primary",
                django::ADDRESS_TABLE,
                row.id,
                row.user_id
            ));
            primary = false;
        }
        writes::upsert_address(conn, row.user_id, email, verified, primary).map_err(db_err)
    }

    fn import_authenticators(&mut self, conn: &mut DbConnection) -> Result<()> {
        self.batches(
            conn,
            3,
            django::AUTHENTICATOR_TABLE,
            &django::authenticators,
            |r| r.id,
            Importer::authenticator,
        )
    }

    fn authenticator(
        &mut self,
        conn: &mut DbConnection,
        row: &django::AuthenticatorRow,
    ) -> RowResult {
        let db_err = |e: DbError| e.to_string();
        require_user(conn, row.user_id)?;
        let data: serde_json::Value =
            serde_json::from_str(&row.data).map_err(|_| "data is not JSON".to_owned())?;
        let secret = self.secret();
        let text = |key: &str| data.get(key).and_then(serde_json::Value::as_str);
        let (type_, ours, existing) = match row.type_.as_str() {
            authenticators::TOTP => {
                let totp_secret = text("secret").ok_or("no secret in data")?;
                let ours = mfa::imported_totp_data(&secret, totp_secret).ok_or(
                    "the TOTP secret is not base32 (encrypted by a custom MFA adapter? \
                     decrypt it first)",
                )?;
                let existing = authenticators::of_type(conn, row.user_id, authenticators::TOTP)
                    .map_err(db_err)?
                    .map(|a| a.id);
                (authenticators::TOTP, ours, existing)
            }
            authenticators::RECOVERY_CODES => {
                let migrated: Option<Vec<String>> = data
                    .get("migrated_codes")
                    .and_then(|c| serde_json::from_value(c.clone()).ok());
                let seed = text("seed");
                if seed.is_none() && migrated.is_none() {
                    return Err("neither a seed nor migrated codes in data".into());
                }
                let used_mask = data
                    .get("used_mask")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0);
                let existing =
                    authenticators::of_type(conn, row.user_id, authenticators::RECOVERY_CODES)
                        .map_err(db_err)?;
                // Codes used here since an earlier run stay used.
                let mut used_mask = used_mask;
                if let (Some(row), Some(seed)) = (&existing, seed) {
                    let ours = mfa::recovery_codes_of(&self.config, &secret, row);
                    let theirs = mfa::recovery_codes::codes_of_seed(
                        seed,
                        self.config.mfa.recovery_code_count,
                        self.config.mfa.recovery_code_digits,
                    );
                    if !ours.migrated && ours.all == theirs {
                        used_mask |= ours.used_mask;
                    }
                }
                let ours = mfa::imported_recovery_codes_data(
                    &secret,
                    seed,
                    used_mask,
                    migrated.as_deref(),
                );
                let existing = existing.map(|a| a.id);
                (authenticators::RECOVERY_CODES, ours, existing)
            }
            authenticators::WEBAUTHN => {
                let credential = data.get("credential").ok_or("no credential in data")?;
                let name = text("name").unwrap_or("Key").to_owned();
                let passkey = mfa::webauthn::credential_of_registration(
                    &self.config,
                    row.user_id,
                    credential,
                )?;
                let mut passkey = passkey;
                let mut existing = None;
                for row in authenticators::for_user(conn, row.user_id).map_err(db_err)? {
                    let ours = mfa::webauthn::WebauthnData::of(&row).and_then(|d| d.passkey);
                    if let Some(ours) = ours.filter(|p| p.cred_id == passkey.cred_id) {
                        // The counter and flags seen here since are kept.
                        passkey = ours;
                        existing = Some(row.id);
                    }
                }
                let ours = serde_json::to_string(&mfa::webauthn::WebauthnData {
                    name,
                    credential: credential.clone(),
                    passkey: Some(passkey),
                })
                .map_err(|e| e.to_string())?;
                (authenticators::WEBAUTHN, ours, existing)
            }
            other => return Err(format!("unknown authenticator type {other:?}")),
        };
        let now = db::now_millis();
        writes::upsert_authenticator(
            conn,
            existing,
            &ImportedAuthenticator {
                user_id: row.user_id,
                type_: type_.to_owned(),
                data: ours,
                created_at: row
                    .created_at
                    .as_deref()
                    .and_then(django::parse_timestamp)
                    .unwrap_or(now),
                last_used_at: row
                    .last_used_at
                    .as_deref()
                    .and_then(django::parse_timestamp),
            },
        )
        .map_err(db_err)
    }

    fn import_social_accounts(&mut self, conn: &mut DbConnection) -> Result<()> {
        self.batches(
            conn,
            4,
            django::SOCIAL_ACCOUNT_TABLE,
            &django::social_accounts,
            |r| r.id,
            Importer::social_account,
        )
    }

    fn social_account(
        &mut self,
        conn: &mut DbConnection,
        row: &django::SocialAccountRow,
    ) -> RowResult {
        let db_err = |e: DbError| e.to_string();
        require_user(conn, row.user_id)?;
        let extra = row.extra_data.as_deref().unwrap_or("{}");
        let extra: serde_json::Value =
            serde_json::from_str(extra).map_err(|_| "extra_data is not JSON".to_owned())?;
        let now = db::now_millis();
        let stamp = |t: &Option<String>| t.as_deref().and_then(django::parse_timestamp);
        writes::upsert_social_account(
            conn,
            &crate::db::social_accounts::NewSocialAccount {
                user_id: row.user_id,
                provider: &row.provider,
                uid: &row.uid,
                extra_data: &extra.to_string(),
                date_joined: stamp(&row.date_joined).unwrap_or(now),
                last_login: stamp(&row.last_login).unwrap_or(now),
            },
        )
        .map(|(_, upsert)| upsert)
        .map_err(db_err)
    }

    fn import_social_tokens(&mut self, conn: &mut DbConnection) -> Result<()> {
        self.batches(
            conn,
            5,
            django::SOCIAL_TOKEN_TABLE,
            &django::social_tokens,
            |r| r.id,
            Importer::social_token,
        )
    }

    fn social_token(&mut self, conn: &mut DbConnection, row: &django::SocialTokenRow) -> RowResult {
        let db_err = |e: DbError| e.to_string();
        let Some(account) =
            crate::db::social_accounts::by_provider_uid(conn, &row.provider, &row.uid)
                .map_err(db_err)?
                .map(|a| a.id)
        else {
            return Err("its provider account was not imported".into());
        };
        let secret = self.secret();
        let purpose = crate::app::social::redirect::TOKEN_PURPOSE;
        let token = sealed::seal(&secret, purpose, &row.token);
        let token_secret = row
            .token_secret
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| sealed::seal(&secret, purpose, s))
            .unwrap_or_default();
        let existed = crate::db::social_accounts::tokens_for(conn, account)
            .map_err(db_err)?
            .iter()
            .any(|t| t.client_id == row.client_id.as_deref().unwrap_or_default());
        crate::db::social_accounts::store_token(
            conn,
            account,
            row.client_id.as_deref().unwrap_or_default(),
            &token,
            &token_secret,
            row.expires_at.as_deref().and_then(django::parse_timestamp),
        )
        .map_err(db_err)?;
        Ok(if existed {
            Upsert::Updated
        } else {
            Upsert::Inserted
        })
    }
}
