//! allauth's user sessions: a logged-in user lists their sessions (every
//! client) and ends some of them; ending the current one logs out.

use crate::app::{Error, FieldError};
use crate::db::{sessions, Db};
use crate::webhooks::{self, Event};
use serde_json::json;

/// One of the user's live sessions as the list shows it (times in unix ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEntry {
    pub id: i64,
    pub ip: String,
    pub user_agent: String,
    pub created_at: i64,
    /// Only with `usersessions.track_activity`.
    pub last_seen_at: Option<i64>,
    pub is_current: bool,
}

/// The user's live sessions, oldest first.
pub async fn list(
    db: &Db,
    user_id: i64,
    current: Option<i64>,
    now_ms: i64,
    track_activity: bool,
) -> Result<Vec<SessionEntry>, Error> {
    let rows = db
        .run(move |conn| sessions::for_user(conn, user_id, now_ms))
        .await?;
    Ok(rows
        .into_iter()
        .map(|s| SessionEntry {
            is_current: Some(s.id) == current,
            id: s.id,
            ip: s.ip.unwrap_or_default(),
            user_agent: s.user_agent.unwrap_or_default(),
            created_at: s.created_at,
            last_seen_at: track_activity.then_some(s.last_seen_at),
        })
        .collect())
}

/// Ends the given sessions of `user_id`. The list must not be empty (400
/// `required`, as Django's required multiple-choice field) and every id must
/// name one of the user's live sessions (else 400 `invalid_choice`, nothing
/// ended). Returns whether the current session was among them.
pub async fn end(
    db: &Db,
    config: &crate::config::Config,
    user_id: i64,
    ids: Vec<i64>,
    current: Option<i64>,
    now_ms: i64,
) -> Result<bool, Error> {
    if ids.is_empty() {
        return Err(Error::Invalid(vec![
            crate::app::account::accounts::required("sessions"),
        ]));
    }
    let wanted = ids.clone();
    let ended_current = current.is_some_and(|c| ids.contains(&c));
    let config = config.clone();
    db.transaction(move |conn| {
        let own: Vec<i64> = sessions::for_user(conn, user_id, now_ms)?
            .into_iter()
            .map(|s| s.id)
            .collect();
        if let Some(bad) = wanted.iter().find(|id| !own.contains(id)) {
            return Ok(Err(*bad));
        }
        sessions::delete_many_for_user(conn, user_id, &wanted)?;
        for id in &wanted {
            let event = Event::new("session.ended", user_id, json!({"session_id": id}));
            webhooks::emit(conn, &config, event, now_ms)?;
        }
        Ok(Ok(()))
    })
    .await?
    .map_err(|bad| {
        Error::Invalid(vec![FieldError::new(
            "invalid_choice",
            Some("sessions"),
            format!("Select a valid choice. {bad} is not one of the available choices."),
        )])
    })?;
    Ok(ended_current)
}
