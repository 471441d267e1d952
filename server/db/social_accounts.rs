//! The `social_accounts` and `social_tokens` tables: accounts at
//! third-party providers linked to users (allauth's `SocialAccount` and
//! `SocialToken`). `(provider, uid)` is unique, so of two concurrent logins
//! that would create the same link, one insert fails and that login looks
//! the account up again. `extra_data` is the provider's JSON, read and
//! written by `app::social`.

use diesel::prelude::*;

use super::schema::{social_accounts, social_tokens};
use super::{DbConnection, DbError};

#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = social_accounts)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct SocialAccount {
    pub id: i64,
    pub user_id: i64,
    pub provider: String,
    pub uid: String,
    pub extra_data: String,
    /// Unix epoch milliseconds.
    pub date_joined: i64,
    pub last_login: i64,
}

#[derive(Clone, Debug, Insertable)]
#[diesel(table_name = social_accounts)]
pub struct NewSocialAccount<'a> {
    pub user_id: i64,
    pub provider: &'a str,
    pub uid: &'a str,
    pub extra_data: &'a str,
    pub date_joined: i64,
    pub last_login: i64,
}

/// Inserts a link; an existing `(provider, uid)` is a unique violation.
pub fn insert(
    conn: &mut DbConnection,
    new: &NewSocialAccount<'_>,
) -> Result<SocialAccount, DbError> {
    Ok(diesel::insert_into(social_accounts::table)
        .values(new)
        .returning(<SocialAccount as Selectable<diesel::pg::Pg>>::construct_selection())
        .get_result::<SocialAccount>(conn)?)
}

/// The account `uid` at `provider`, if linked to a user.
pub fn by_provider_uid(
    conn: &mut DbConnection,
    provider: &str,
    uid: &str,
) -> Result<Option<SocialAccount>, DbError> {
    Ok(social_accounts::table
        .filter(social_accounts::provider.eq(provider))
        .filter(social_accounts::uid.eq(uid))
        .select(SocialAccount::as_select())
        .first(conn)
        .optional()?)
}

/// The user's linked accounts, oldest first.
pub fn for_user(conn: &mut DbConnection, user_id: i64) -> Result<Vec<SocialAccount>, DbError> {
    Ok(social_accounts::table
        .filter(social_accounts::user_id.eq(user_id))
        .order(social_accounts::id.asc())
        .select(SocialAccount::as_select())
        .load(conn)?)
}

/// A login through account `id`: the provider's fresh data and the time.
pub fn record_login(
    conn: &mut DbConnection,
    id: i64,
    extra_data: &str,
    now: i64,
) -> Result<(), DbError> {
    diesel::update(social_accounts::table.filter(social_accounts::id.eq(id)))
        .set((
            social_accounts::extra_data.eq(extra_data),
            social_accounts::last_login.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Removes the user's link `id`; whether it existed.
pub fn delete(conn: &mut DbConnection, user_id: i64, id: i64) -> Result<bool, DbError> {
    let n = diesel::delete(
        social_accounts::table
            .filter(social_accounts::id.eq(id))
            .filter(social_accounts::user_id.eq(user_id)),
    )
    .execute(conn)?;
    Ok(n == 1)
}

/// A provider token as stored (sealed values).
#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = social_tokens)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct SocialToken {
    pub id: i64,
    pub account_id: i64,
    pub client_id: String,
    pub token: String,
    pub token_secret: String,
    pub expires_at: Option<i64>,
}

impl std::fmt::Debug for SocialToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocialToken")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Stores the token of `account_id` for `client_id`, replacing an older
/// one. An empty `token_secret` (no refresh token this time) keeps the
/// stored one, as allauth does.
pub fn store_token(
    conn: &mut DbConnection,
    account_id: i64,
    client_id: &str,
    token: &str,
    token_secret: &str,
    expires_at: Option<i64>,
) -> Result<(), DbError> {
    let existing: Option<i64> = social_tokens::table
        .filter(social_tokens::account_id.eq(account_id))
        .filter(social_tokens::client_id.eq(client_id))
        .select(social_tokens::id)
        .first(conn)
        .optional()?;
    match existing {
        Some(id) => {
            let target = social_tokens::table.filter(social_tokens::id.eq(id));
            if token_secret.is_empty() {
                diesel::update(target)
                    .set((
                        social_tokens::token.eq(token),
                        social_tokens::expires_at.eq(expires_at),
                    ))
                    .execute(conn)?;
            } else {
                diesel::update(target)
                    .set((
                        social_tokens::token.eq(token),
                        social_tokens::token_secret.eq(token_secret),
                        social_tokens::expires_at.eq(expires_at),
                    ))
                    .execute(conn)?;
            }
        }
        None => {
            diesel::insert_into(social_tokens::table)
                .values((
                    social_tokens::account_id.eq(account_id),
                    social_tokens::client_id.eq(client_id),
                    social_tokens::token.eq(token),
                    social_tokens::token_secret.eq(token_secret),
                    social_tokens::expires_at.eq(expires_at),
                ))
                .execute(conn)?;
        }
    }
    Ok(())
}

/// The tokens stored for account `account_id`.
pub fn tokens_for(conn: &mut DbConnection, account_id: i64) -> Result<Vec<SocialToken>, DbError> {
    Ok(social_tokens::table
        .filter(social_tokens::account_id.eq(account_id))
        .select(SocialToken::as_select())
        .load(conn)?)
}
