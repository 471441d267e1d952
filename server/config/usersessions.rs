//! `[usersessions]`: django-allauth's `USERSESSIONS_*` settings.

use serde::Deserialize;

/// `[usersessions]`: django-allauth's `USERSESSIONS_*` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UserSessionsConfig {
    /// `allauth.usersessions` in `INSTALLED_APPS`.
    pub enabled: bool,
    /// Keep last-seen time and IP of each session.
    pub track_activity: bool,
}

impl Default for UserSessionsConfig {
    fn default() -> Self {
        UserSessionsConfig {
            enabled: true,
            track_activity: false,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use crate::config::testing::load;

    #[test]
    fn defaults_equal_allauths() {
        let c = load("");
        assert!(c.usersessions.enabled && !c.usersessions.track_activity);
    }
}
