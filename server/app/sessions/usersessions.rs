//! allauth's user sessions: a logged-in user lists their sessions (every
//! client) and ends some of them; ending the current one logs out.

use serde_json::{json, Value};

use crate::app::{Error, FieldError};
use crate::db::{sessions, Db};

/// The user's live sessions in allauth's shape, oldest first.
pub async fn list(
    db: &Db,
    user_id: i64,
    current: Option<i64>,
    now_ms: i64,
    track_activity: bool,
) -> Result<Value, Error> {
    let rows = db
        .run(move |conn| sessions::for_user(conn, user_id, now_ms))
        .await?;
    let seconds = |ms: i64| ms as f64 / 1000.0;
    let entries: Vec<Value> = rows
        .iter()
        .map(|s| {
            let mut entry = json!({
                "user_agent": s.user_agent.clone().unwrap_or_default(),
                "ip": s.ip.clone().unwrap_or_default(),
                "created_at": seconds(s.created_at),
                "is_current": Some(s.id) == current,
                "id": s.id,
            });
            if track_activity {
                entry["last_seen_at"] = json!(seconds(s.last_seen_at));
            }
            entry
        })
        .collect();
    Ok(Value::Array(entries))
}

/// Ends the given sessions of `user_id`. The list must not be empty (400
/// `required`, as Django's required multiple-choice field) and every id must
/// name one of the user's live sessions (else 400 `invalid_choice`, nothing
/// ended). Returns whether the current session was among them.
pub async fn end(
    db: &Db,
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
    db.transaction(move |conn| {
        let own: Vec<i64> = sessions::for_user(conn, user_id, now_ms)?
            .into_iter()
            .map(|s| s.id)
            .collect();
        if let Some(bad) = wanted.iter().find(|id| !own.contains(id)) {
            return Ok(Err(*bad));
        }
        sessions::delete_many_for_user(conn, user_id, &wanted)?;
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
