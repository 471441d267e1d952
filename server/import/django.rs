//! The source side of `import django`: a django-allauth project's database
//! (PostgreSQL or SQLite), read in batches by id with plain SQL, every
//! column cast to text or an integer so that one query serves both engines.
//! Table and column names are Django's and allauth's defaults; the user
//! table and its columns can be renamed for a custom user model
//! ([`UserTable`]).

use anyhow::{bail, Context, Result};
use diesel::pg::{Pg, PgConnection};
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel::sqlite::{Sqlite, SqliteConnection};
use diesel::{Connection, QueryableByName, RunQueryDsl};

/// An open source database.
pub enum Source {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

impl Source {
    /// Opens `url` (`postgres://…`, `sqlite://path` or a path). A SQLite
    /// file must exist (it is never created).
    pub fn open(url: &str) -> Result<Source> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut conn = PgConnection::establish(url)
                .with_context(|| "connecting to the Django database".to_string())?;
            // Timestamps read as text are then UTC; and nothing is written.
            diesel::sql_query("SET TIME ZONE 'UTC'").execute(&mut conn)?;
            diesel::sql_query("SET default_transaction_read_only = on").execute(&mut conn)?;
            return Ok(Source::Postgres(conn));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.contains("://") {
            bail!("unsupported URL for the Django database: {url:?} (use postgres://… or sqlite://path)");
        }
        if !std::path::Path::new(path).is_file() {
            bail!("no SQLite database at {path:?}");
        }
        let mut conn = SqliteConnection::establish(path)
            .with_context(|| format!("opening the Django database {path:?}"))?;
        // Never a write to the Django database, whatever happens here.
        diesel::sql_query("PRAGMA query_only = ON").execute(&mut conn)?;
        Ok(Source::Sqlite(conn))
    }

    /// The rows of `sql`.
    fn load<T>(&mut self, sql: &str) -> Result<Vec<T>>
    where
        T: QueryableByName<Pg> + QueryableByName<Sqlite> + 'static,
    {
        let query = diesel::sql_query(sql);
        let rows = match self {
            Source::Postgres(conn) => query.load::<T>(conn),
            Source::Sqlite(conn) => query.load::<T>(conn),
        };
        rows.with_context(|| format!("reading the Django database: {sql}"))
    }

    /// Whether `table` exists (a Django app may not be installed).
    pub fn has_table(&mut self, table: &str) -> bool {
        self.count(table).is_ok()
    }

    /// The number of rows of `table`.
    pub fn count(&mut self, table: &str) -> Result<i64> {
        let sql = format!(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM {}",
            quote(table)?
        );
        let rows: Vec<Count> = self.load(&sql)?;
        Ok(rows.first().map_or(0, |r| r.n))
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// `name` as a quoted SQL identifier (both engines take double quotes).
fn quote(name: &str) -> Result<String> {
    if name.is_empty() || name.contains('"') || name.contains('\0') {
        bail!("not a usable table or column name: {name:?}");
    }
    Ok(format!("\"{name}\""))
}

/// The user table and its columns; each column may be absent (`None`),
/// for a custom user model without it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserTable {
    pub table: String,
    pub id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub is_active: Option<String>,
    pub date_joined: Option<String>,
    pub last_login: Option<String>,
}

/// The fields a `--user-column FIELD=COLUMN` may name.
pub const USER_FIELDS: [&str; 9] = [
    "id",
    "username",
    "password",
    "email",
    "first_name",
    "last_name",
    "is_active",
    "date_joined",
    "last_login",
];

impl Default for UserTable {
    /// Django's `auth_user`.
    fn default() -> UserTable {
        let some = |s: &str| Some(s.to_owned());
        UserTable {
            table: "auth_user".into(),
            id: "id".into(),
            username: some("username"),
            password: some("password"),
            email: some("email"),
            first_name: some("first_name"),
            last_name: some("last_name"),
            is_active: some("is_active"),
            date_joined: some("date_joined"),
            last_login: some("last_login"),
        }
    }
}

impl UserTable {
    /// `auth_user`, or `table`, with `FIELD=COLUMN` renames (an empty
    /// COLUMN: the model has no such field).
    pub fn with(table: Option<&str>, renames: &[String]) -> Result<UserTable> {
        let mut out = UserTable::default();
        if let Some(table) = table {
            out.table = table.to_owned();
        }
        for rename in renames {
            let Some((field, column)) = rename.split_once('=') else {
                bail!("--user-column wants FIELD=COLUMN, got {rename:?}");
            };
            let column = (!column.trim().is_empty()).then(|| column.trim().to_owned());
            let slot = match field.trim() {
                "id" => {
                    out.id = column.context("the id column cannot be absent")?;
                    continue;
                }
                "username" => &mut out.username,
                "password" => &mut out.password,
                "email" => &mut out.email,
                "first_name" => &mut out.first_name,
                "last_name" => &mut out.last_name,
                "is_active" => &mut out.is_active,
                "date_joined" => &mut out.date_joined,
                "last_login" => &mut out.last_login,
                other => bail!(
                    "--user-column: unknown field {other:?} (one of {})",
                    USER_FIELDS.join(", ")
                ),
            };
            *slot = column;
        }
        Ok(out)
    }
}

/// `CAST(column AS type)`, or a NULL of that type for an absent column.
fn cast(column: Option<&str>, type_: &str) -> Result<String> {
    Ok(match column {
        Some(c) => format!("CAST({} AS {type_})", quote(c)?),
        None => format!("CAST(NULL AS {type_})"),
    })
}

/// A row of the user table.
#[derive(Clone, QueryableByName)]
pub struct UserRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Nullable<Text>)]
    pub username: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub password: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub email: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub first_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub last_name: Option<String>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub is_active: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    pub date_joined: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub last_login: Option<String>,
}

/// Up to `limit` users with an id above `after`, by id.
pub fn users(source: &mut Source, t: &UserTable, after: i64, limit: i64) -> Result<Vec<UserRow>> {
    let id = quote(&t.id)?;
    let sql = format!(
        "SELECT CAST({id} AS BIGINT) AS id, {} AS username, {} AS password, {} AS email, \
         {} AS first_name, {} AS last_name, {} AS is_active, {} AS date_joined, \
         {} AS last_login FROM {} WHERE {id} > {after} ORDER BY {id} LIMIT {limit}",
        cast(t.username.as_deref(), "TEXT")?,
        cast(t.password.as_deref(), "TEXT")?,
        cast(t.email.as_deref(), "TEXT")?,
        cast(t.first_name.as_deref(), "TEXT")?,
        cast(t.last_name.as_deref(), "TEXT")?,
        cast(t.is_active.as_deref(), "INTEGER")?,
        cast(t.date_joined.as_deref(), "TEXT")?,
        cast(t.last_login.as_deref(), "TEXT")?,
        quote(&t.table)?,
    );
    source.load(&sql)
}

/// A row of `account_emailaddress`.
#[derive(Clone, QueryableByName)]
pub struct AddressRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub user_id: i64,
    #[diesel(sql_type = Text)]
    pub email: String,
    #[diesel(sql_type = Integer)]
    pub verified: i32,
    #[diesel(sql_type = Integer)]
    pub primary: i32,
}

pub const ADDRESS_TABLE: &str = "account_emailaddress";

pub fn addresses(source: &mut Source, after: i64, limit: i64) -> Result<Vec<AddressRow>> {
    source.load(&format!(
        "SELECT CAST(\"id\" AS BIGINT) AS id, CAST(\"user_id\" AS BIGINT) AS user_id, \
         CAST(\"email\" AS TEXT) AS email, CAST(\"verified\" AS INTEGER) AS verified, \
         CAST(\"primary\" AS INTEGER) AS \"primary\" FROM \"{ADDRESS_TABLE}\" \
         WHERE \"id\" > {after} ORDER BY \"id\" LIMIT {limit}"
    ))
}

/// A row of `mfa_authenticator`.
#[derive(Clone, QueryableByName)]
pub struct AuthenticatorRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub user_id: i64,
    #[diesel(sql_type = Text)]
    pub type_: String,
    #[diesel(sql_type = Text)]
    pub data: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub created_at: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub last_used_at: Option<String>,
}

pub const AUTHENTICATOR_TABLE: &str = "mfa_authenticator";

pub fn authenticators(
    source: &mut Source,
    after: i64,
    limit: i64,
) -> Result<Vec<AuthenticatorRow>> {
    source.load(&format!(
        "SELECT CAST(\"id\" AS BIGINT) AS id, CAST(\"user_id\" AS BIGINT) AS user_id, \
         CAST(\"type\" AS TEXT) AS type_, CAST(\"data\" AS TEXT) AS data, \
         CAST(\"created_at\" AS TEXT) AS created_at, CAST(\"last_used_at\" AS TEXT) AS last_used_at \
         FROM \"{AUTHENTICATOR_TABLE}\" WHERE \"id\" > {after} ORDER BY \"id\" LIMIT {limit}"
    ))
}

/// A row of `socialaccount_socialaccount`.
#[derive(Clone, QueryableByName)]
pub struct SocialAccountRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub user_id: i64,
    #[diesel(sql_type = Text)]
    pub provider: String,
    #[diesel(sql_type = Text)]
    pub uid: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub extra_data: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub date_joined: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub last_login: Option<String>,
}

pub const SOCIAL_ACCOUNT_TABLE: &str = "socialaccount_socialaccount";

pub fn social_accounts(
    source: &mut Source,
    after: i64,
    limit: i64,
) -> Result<Vec<SocialAccountRow>> {
    source.load(&format!(
        "SELECT CAST(\"id\" AS BIGINT) AS id, CAST(\"user_id\" AS BIGINT) AS user_id, \
         CAST(\"provider\" AS TEXT) AS provider, CAST(\"uid\" AS TEXT) AS uid, \
         CAST(\"extra_data\" AS TEXT) AS extra_data, CAST(\"date_joined\" AS TEXT) AS date_joined, \
         CAST(\"last_login\" AS TEXT) AS last_login FROM \"{SOCIAL_ACCOUNT_TABLE}\" \
         WHERE \"id\" > {after} ORDER BY \"id\" LIMIT {limit}"
    ))
}

/// A row of `socialaccount_socialtoken`, with its account's provider and
/// uid and its app's client id (none for an app configured in settings).
#[derive(Clone, QueryableByName)]
pub struct SocialTokenRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub provider: String,
    #[diesel(sql_type = Text)]
    pub uid: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub client_id: Option<String>,
    #[diesel(sql_type = Text)]
    pub token: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub token_secret: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub expires_at: Option<String>,
}

pub const SOCIAL_TOKEN_TABLE: &str = "socialaccount_socialtoken";
const SOCIAL_APP_TABLE: &str = "socialaccount_socialapp";

pub fn social_tokens(source: &mut Source, after: i64, limit: i64) -> Result<Vec<SocialTokenRow>> {
    source.load(&format!(
        "SELECT CAST(t.\"id\" AS BIGINT) AS id, CAST(a.\"provider\" AS TEXT) AS provider, \
         CAST(a.\"uid\" AS TEXT) AS uid, CAST(p.\"client_id\" AS TEXT) AS client_id, \
         CAST(t.\"token\" AS TEXT) AS token, CAST(t.\"token_secret\" AS TEXT) AS token_secret, \
         CAST(t.\"expires_at\" AS TEXT) AS expires_at \
         FROM \"{SOCIAL_TOKEN_TABLE}\" t \
         JOIN \"{SOCIAL_ACCOUNT_TABLE}\" a ON a.\"id\" = t.\"account_id\" \
         LEFT JOIN \"{SOCIAL_APP_TABLE}\" p ON p.\"id\" = t.\"app_id\" \
         WHERE t.\"id\" > {after} ORDER BY t.\"id\" LIMIT {limit}"
    ))
}

pub const SESSION_TABLE: &str = "django_session";

/// A Django timestamp read as text (`2024-05-01 12:34:56.789012`, with
/// `T` or a space, with or without fraction and UTC offset) as unix epoch
/// milliseconds. Naive values are UTC (Django's `USE_TZ = True` stores UTC).
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, rest) = text.split_at_checked(10)?;
    let mut parts = date.split('-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next()?.parse().ok()?;
    let day: u32 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let rest = rest.strip_prefix([' ', 'T']).unwrap_or(rest);
    // Time: HH:MM:SS, then an optional fraction, then an optional offset.
    let (clock, mut tail) = if rest.is_empty() {
        ("00:00:00", "")
    } else {
        rest.split_at_checked(8)?
    };
    let mut hms = clock.split(':');
    let hour: i64 = hms.next()?.parse().ok()?;
    let minute: i64 = hms.next()?.parse().ok()?;
    let second: i64 = hms.next()?.parse().ok()?;
    let mut millis = 0i64;
    if let Some(fraction) = tail.strip_prefix('.') {
        let digits: String = fraction.chars().take_while(char::is_ascii_digit).collect();
        tail = &fraction[digits.len()..];
        let padded = format!("{digits:0<3}");
        millis = padded.get(..3)?.parse().ok()?;
    }
    let offset_minutes = match tail.trim() {
        "" | "Z" => 0,
        offset => {
            let sign = match offset.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits: String = offset[1..].chars().filter(char::is_ascii_digit).collect();
            let hours: i64 = digits.get(..2)?.parse().ok()?;
            let minutes: i64 = digits.get(2..4).map_or(Some(0), |m| m.parse().ok())?;
            sign * (hours * 60 + minutes)
        }
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_of_both_engines() {
        // SQLite (naive UTC) and PostgreSQL (timestamptz as text, UTC).
        assert_eq!(parse_timestamp("1970-01-01 00:00:00"), Some(0));
        assert_eq!(
            parse_timestamp("2024-05-01 12:34:56.789012"),
            Some(1_714_566_896_789)
        );
        assert_eq!(
            parse_timestamp("2024-05-01 12:34:56.789+00"),
            Some(1_714_566_896_789)
        );
        assert_eq!(
            parse_timestamp("2024-05-01T14:34:56.7+02:00"),
            Some(1_714_566_896_700)
        );
        assert_eq!(parse_timestamp("2000-02-29"), Some(951_782_400_000));
        assert_eq!(parse_timestamp("garbage"), None);
        assert_eq!(parse_timestamp("2024-13-01 00:00:00"), None);
    }

    #[test]
    fn custom_user_columns() {
        let t = UserTable::with(
            Some("accounts_user"),
            &["username=".into(), "email=email_address".into()],
        )
        .unwrap();
        assert_eq!(t.table, "accounts_user");
        assert_eq!(t.username, None);
        assert_eq!(t.email.as_deref(), Some("email_address"));
        assert!(UserTable::with(None, &["nope=x".into()]).is_err());
        assert!(UserTable::with(None, &["id=".into()]).is_err());
        assert!(quote("a\"b").is_err());
    }
}
