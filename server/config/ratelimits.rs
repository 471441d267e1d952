//! Rate limits: the `"5/m/user"` syntax, a `false`-or-overrides setting, and the `[account.rate_limits]` and `[mfa.rate_limits]` actions with allauth's defaults.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// What a rate limit counts per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RateLimitPer {
    /// Client IP address.
    Ip,
    /// Authenticated user.
    User,
    /// An action-specific key (e.g. the email address asked for).
    Key,
}

impl RateLimitPer {
    pub fn as_str(self) -> &'static str {
        match self {
            RateLimitPer::Ip => "ip",
            RateLimitPer::User => "user",
            RateLimitPer::Key => "key",
        }
    }
}

/// At most `amount` hits per `period_secs` seconds, counted per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimit {
    pub amount: u32,
    pub period_secs: u64,
    pub per: RateLimitPer,
}

impl RateLimit {
    pub const fn new(amount: u32, period_secs: u64, per: RateLimitPer) -> Self {
        RateLimit {
            amount,
            period_secs,
            per,
        }
    }

    /// Parses allauth's syntax: `"5/m/user"`, `"20/m/ip,5/m/key"`,
    /// `"5/300s/key"`, `"10/m"` (per ip). Periods: `s`, `m`, `h`, `d`,
    /// optionally preceded by a count (`300s`, `2h`, `1.5m`). An empty string
    /// means no limit.
    pub fn parse_list(text: &str) -> Result<Vec<RateLimit>, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Vec::new());
        }
        text.split(',')
            .map(|part| RateLimit::parse(part.trim()))
            .collect()
    }

    fn parse(text: &str) -> Result<RateLimit, String> {
        let bad = |why: &str| {
            format!(
                "invalid rate limit {text:?}: {why} (expected e.g. \"5/m/ip\" or \"5/300s/key\")"
            )
        };
        let parts: Vec<&str> = text.split('/').collect();
        let (amount, period, per) = match parts.as_slice() {
            [amount, period] => (*amount, *period, "ip"),
            [amount, period, per] => (*amount, *period, *per),
            _ => return Err(bad("wrong number of / separated parts")),
        };
        let amount: u32 = amount
            .trim()
            .parse()
            .map_err(|_| bad("the amount is not a whole number"))?;
        if amount == 0 {
            return Err(bad("the amount must be at least 1 (use false to disable)"));
        }
        let period = period.trim();
        let (count, unit) = period.split_at(period.len().saturating_sub(1));
        let unit_secs: f64 = match unit {
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return Err(bad("the period unit must be s, m, h or d")),
        };
        let count: f64 = if count.is_empty() {
            1.0
        } else {
            count
                .parse()
                .map_err(|_| bad("the period count is not a number"))?
        };
        let secs = count * unit_secs;
        if !(secs.is_finite() && secs >= 1.0 && secs.fract() == 0.0 && secs <= 1e12) {
            return Err(bad(
                "the period must be a whole, positive number of seconds",
            ));
        }
        let per = match per.trim() {
            "ip" => RateLimitPer::Ip,
            "user" => RateLimitPer::User,
            "key" => RateLimitPer::Key,
            _ => return Err(bad("the last part must be ip, user or key")),
        };
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let period_secs = secs as u64;
        Ok(RateLimit {
            amount,
            period_secs,
            per,
        })
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}s/{}",
            self.amount,
            self.period_secs,
            self.per.as_str()
        )
    }
}

/// One action's configured rates: a rate string, or `false` / `""` for none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateRule(pub Vec<RateLimit>);

impl<'de> Deserialize<'de> for RateRule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RateRule;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a rate limit string like \"5/m/ip\", or false")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RateRule, E> {
                if v {
                    Err(E::invalid_value(de::Unexpected::Bool(true), &self))
                } else {
                    Ok(RateRule(Vec::new()))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RateRule, E> {
                RateLimit::parse_list(v).map(RateRule).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A set of rate-limited actions with allauth's defaults.
pub trait RateLimitActions: Default + fmt::Debug + Clone {
    /// allauth's default per action. `email_verification_by_code` selects the
    /// `confirm_email` default, as allauth does.
    fn defaults(email_verification_by_code: bool) -> Vec<(&'static str, Vec<RateLimit>)>;
    /// The configured overrides (`None` = keep the default).
    fn overrides(&self) -> Vec<(&'static str, Option<&RateRule>)>;
}

/// A `rate_limits` setting: `false` (every limit off) or overrides merged
/// over the defaults. Its `Debug` shows the effective limits.
#[derive(Clone)]
pub struct RateLimits<A: RateLimitActions> {
    /// `None` = disabled (`rate_limits = false`).
    pub overrides: Option<A>,
    effective: BTreeMap<String, Vec<RateLimit>>,
}

impl<A: RateLimitActions> RateLimits<A> {
    /// Effective limits (see [`AccountConfig::rate_limits`](super::AccountConfig::rate_limits)).
    pub fn effective(&self) -> &BTreeMap<String, Vec<RateLimit>> {
        &self.effective
    }

    pub fn is_disabled(&self) -> bool {
        self.overrides.is_none()
    }

    fn from_overrides(overrides: Option<A>) -> Self {
        let mut this = RateLimits {
            overrides,
            effective: BTreeMap::new(),
        };
        this.resolve(false);
        this
    }

    pub(super) fn resolve(&mut self, email_verification_by_code: bool) {
        self.effective.clear();
        let Some(overrides) = &self.overrides else {
            return;
        };
        let mut map: BTreeMap<String, Vec<RateLimit>> = A::defaults(email_verification_by_code)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        for (action, rule) in overrides.overrides() {
            if let Some(rule) = rule {
                map.insert(action.to_owned(), rule.0.clone());
            }
        }
        map.retain(|_, v| !v.is_empty());
        self.effective = map;
    }
}

impl<A: RateLimitActions> Default for RateLimits<A> {
    fn default() -> Self {
        RateLimits::from_overrides(Some(A::default()))
    }
}

impl<A: RateLimitActions> fmt::Debug for RateLimits<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.effective.iter().map(|(k, v)| {
                let rates: Vec<String> = v.iter().map(ToString::to_string).collect();
                (k, rates.join(","))
            }))
            .finish()
    }
}

impl<'de, A: RateLimitActions + Deserialize<'de>> Deserialize<'de> for RateLimits<A> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<A>(PhantomData<A>);
        impl<'de, A: RateLimitActions + Deserialize<'de>> Visitor<'de> for V<A> {
            type Value = RateLimits<A>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("false, or a table of action = \"rate\"")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(RateLimits::from_overrides(if v {
                    Some(A::default())
                } else {
                    None
                }))
            }
            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
                let overrides = A::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RateLimits::from_overrides(Some(overrides)))
            }
        }
        deserializer.deserialize_any(V(PhantomData))
    }
}

pub(super) const fn rl(amount: u32, period_secs: u64, per: RateLimitPer) -> RateLimit {
    RateLimit::new(amount, period_secs, per)
}

/// `[account.rate_limits]`: `ACCOUNT_RATE_LIMITS` actions.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountRateLimitOverrides {
    pub change_password: Option<RateRule>,
    pub change_phone: Option<RateRule>,
    pub manage_email: Option<RateRule>,
    pub reset_password: Option<RateRule>,
    pub reauthenticate: Option<RateRule>,
    pub reset_password_from_key: Option<RateRule>,
    pub signup: Option<RateRule>,
    pub login: Option<RateRule>,
    pub request_login_code: Option<RateRule>,
    pub login_failed: Option<RateRule>,
    pub confirm_email: Option<RateRule>,
    pub verify_phone: Option<RateRule>,
}

impl RateLimitActions for AccountRateLimitOverrides {
    fn defaults(by_code: bool) -> Vec<(&'static str, Vec<RateLimit>)> {
        use RateLimitPer::{Ip, Key, User};
        vec![
            ("change_password", vec![rl(5, 60, User)]),
            ("change_phone", vec![rl(1, 60, User)]),
            ("manage_email", vec![rl(10, 60, User)]),
            ("reset_password", vec![rl(20, 60, Ip), rl(5, 60, Key)]),
            ("reauthenticate", vec![rl(10, 60, User)]),
            ("reset_password_from_key", vec![rl(20, 60, Ip)]),
            ("signup", vec![rl(20, 60, Ip)]),
            ("login", vec![rl(30, 60, Ip)]),
            ("request_login_code", vec![rl(20, 60, Ip), rl(3, 60, Key)]),
            ("login_failed", vec![rl(10, 60, Ip), rl(5, 300, Key)]),
            (
                "confirm_email",
                vec![if by_code {
                    rl(1, 10, Key)
                } else {
                    rl(1, 180, Key)
                }],
            ),
            ("verify_phone", vec![rl(1, 30, Key), rl(3, 60, Ip)]),
        ]
    }

    fn overrides(&self) -> Vec<(&'static str, Option<&RateRule>)> {
        vec![
            ("change_password", self.change_password.as_ref()),
            ("change_phone", self.change_phone.as_ref()),
            ("manage_email", self.manage_email.as_ref()),
            ("reset_password", self.reset_password.as_ref()),
            ("reauthenticate", self.reauthenticate.as_ref()),
            (
                "reset_password_from_key",
                self.reset_password_from_key.as_ref(),
            ),
            ("signup", self.signup.as_ref()),
            ("login", self.login.as_ref()),
            ("request_login_code", self.request_login_code.as_ref()),
            ("login_failed", self.login_failed.as_ref()),
            ("confirm_email", self.confirm_email.as_ref()),
            ("verify_phone", self.verify_phone.as_ref()),
        ]
    }
}

/// `[mfa.rate_limits]`: `MFA_RATE_LIMITS` actions.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MfaRateLimitOverrides {
    /// Passwordless (passkey) logins.
    pub webauthn_login: Option<RateRule>,
}

impl RateLimitActions for MfaRateLimitOverrides {
    fn defaults(_by_code: bool) -> Vec<(&'static str, Vec<RateLimit>)> {
        vec![("webauthn_login", vec![rl(10, 60, RateLimitPer::Ip)])]
    }

    fn overrides(&self) -> Vec<(&'static str, Option<&RateRule>)> {
        vec![("webauthn_login", self.webauthn_login.as_ref())]
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::config::testing::{load, load_err};
    use crate::config::Config;

    #[test]
    fn rate_limits_false_disables_all() {
        let c = load("[account]\nrate_limits = false\n[mfa]\nrate_limits = false\n");
        assert!(c.account.rate_limits().is_empty());
        assert!(c.mfa.rate_limits().is_empty());
        let c = Config::from_sources("", &[("ALLAUTH_ACCOUNT__RATE_LIMITS", "false")]).unwrap();
        assert!(c.account.rate_limits().is_empty());
    }

    #[test]
    fn rate_limits_partial_table_merges_over_defaults() {
        let c = load("[account.rate_limits]\nlogin = \"5/m/user\"\nsignup = false\nconfirm_email = \"\"\nlogin_failed = \"3/2h/key,1/d\"\n");
        let rl_map = c.account.rate_limits();
        assert_eq!(rl_map["login"], vec![rl(5, 60, RateLimitPer::User)]);
        assert_eq!(
            rl_map["login_failed"],
            vec![
                rl(3, 7200, RateLimitPer::Key),
                rl(1, 86400, RateLimitPer::Ip)
            ]
        );
        assert!(!rl_map.contains_key("signup") && !rl_map.contains_key("confirm_email"));
        assert_eq!(
            rl_map["change_password"],
            vec![rl(5, 60, RateLimitPer::User)]
        );
        assert_eq!(rl_map.len(), 10);
    }

    #[test]
    fn rate_limit_errors_name_the_key() {
        let err = load_err("[account.rate_limits]\nlogn = \"5/m\"\n", &[]);
        assert_eq!(err.key(), Some("account.rate_limits.logn"));
        assert!(err.to_string().contains("did you mean \"login\""), "{err}");
        let err = load_err("[account.rate_limits]\nlogin = \"5/w/ip\"\n", &[]);
        assert_eq!(err.key(), Some("account.rate_limits.login"));
        assert!(err.to_string().contains("5/w/ip"), "{err}");
        let err = load_err("[mfa.rate_limits]\nwebauthn_login = \"x/m\"\n", &[]);
        assert_eq!(err.key(), Some("mfa.rate_limits.webauthn_login"));
        let err = load_err(
            "",
            &[("ALLAUTH_ACCOUNT__RATE_LIMITS__SIGNUP", "5/m/everyone")],
        );
        assert!(
            err.to_string()
                .contains("ALLAUTH_ACCOUNT__RATE_LIMITS__SIGNUP"),
            "{err}"
        );
    }

    #[test]
    fn rate_limit_syntax() {
        let p = |s| RateLimit::parse_list(s);
        assert_eq!(p("5/m/user").unwrap(), vec![rl(5, 60, RateLimitPer::User)]);
        assert_eq!(
            p("5/300s/key").unwrap(),
            vec![rl(5, 300, RateLimitPer::Key)]
        );
        assert_eq!(
            p(" 20/m/ip , 5/m/key ").unwrap(),
            vec![rl(20, 60, RateLimitPer::Ip), rl(5, 60, RateLimitPer::Key)]
        );
        assert_eq!(p("10/m").unwrap(), vec![rl(10, 60, RateLimitPer::Ip)]);
        assert_eq!(p("1/1.5m/ip").unwrap(), vec![rl(1, 90, RateLimitPer::Ip)]);
        assert_eq!(p("2/h/ip").unwrap()[0].period_secs, 3600);
        assert_eq!(p("2/d/ip").unwrap()[0].period_secs, 86400);
        assert!(p("").unwrap().is_empty());
        for bad in [
            "5",
            "5/m/ip/x",
            "x/m/ip",
            "0/m/ip",
            "5/0s/ip",
            "5/0.5s/ip",
            "5/ms/ip",
            "5/m/host",
            "5//ip",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn confirm_email_default_follows_verification_by_code() {
        let c = load("[account]\nemail_verification = \"mandatory\"\nemail_verification_by_code_enabled = true\nsignup_fields = [\"email*\", \"username*\", \"password1*\"]\n");
        assert_eq!(
            c.account.rate_limits()["confirm_email"],
            vec![rl(1, 10, RateLimitPer::Key)]
        );
    }
}
