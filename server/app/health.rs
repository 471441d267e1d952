//! What readiness depends on (`/_allauth/health/ready`): the database
//! answers, this build's migrations are applied, and no mail is stuck in
//! the outbox.

use crate::app::Error;
use crate::db::{self, mail_outbox, Db};

/// How long a due mail may wait before the outbox counts as stuck: a
/// working sender takes a due mail within seconds (a failure pushes its next
/// attempt forward; a given-up mail is due never).
pub const STUCK_AFTER_MS: i64 = 15 * 60 * 1000;

/// The findings of one readiness check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Readiness {
    /// Migrations of this build not applied.
    pub pending_migrations: usize,
    /// Unsent mails due for longer than [`STUCK_AFTER_MS`].
    pub overdue_mail: i64,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.pending_migrations == 0 && self.overdue_mail == 0
    }
}

/// Checks readiness at `now_ms` in one database round trip; an error means
/// the database did not answer.
pub async fn readiness(db: &Db, now_ms: i64) -> Result<Readiness, Error> {
    let before = now_ms - STUCK_AFTER_MS;
    Ok(db
        .run(move |conn| {
            Ok(Readiness {
                pending_migrations: db::pending_migrations(conn)?,
                overdue_mail: mail_outbox::overdue(conn, before)?,
            })
        })
        .await?)
}
