//! allauth's `mfa` app: second factors (TOTP, recovery codes; WebAuthn
//! later), their management ([`manage`]), and their use at login, to
//! reauthenticate and to trust a browser ([`authenticate`]).
//!
//! Each authenticator is a row of `mfa_authenticators` whose `data` is the
//! JSON allauth keeps, secrets sealed ([`crate::app::security::sealed`]).
//! A code is used once: a TOTP step is taken with one conditional UPDATE,
//! a recovery code is marked used with a compare-and-set of `data`.

pub mod authenticate;
pub mod manage;
pub mod recovery_codes;
pub mod totp;
pub mod trust;
pub mod webauthn;

use serde::{Deserialize, Serialize};

use crate::app::account::accounts::Deps;
use crate::app::security::sealed;
use crate::app::Error;
use crate::config::{Config, MfaType};
use crate::db::authenticators::{self, Authenticator, NewAuthenticator};
use crate::db::{DbConnection, DbError};

use recovery_codes::{Codes, RecoveryCodesData};

/// Sealing purposes.
const TOTP_PURPOSE: &str = "mfa-totp";
const RECOVERY_PURPOSE: &str = "mfa-recovery-codes";
pub(crate) const TOTP_SETUP_PURPOSE: &str = "mfa-totp-setup";

/// The `data` of a TOTP authenticator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct TotpData {
    secret: String,
}

/// The kind a stored `type` names, if it is one this server knows.
fn kind_named(type_: &str) -> Option<MfaType> {
    match type_ {
        authenticators::TOTP => Some(MfaType::Totp),
        authenticators::RECOVERY_CODES => Some(MfaType::RecoveryCodes),
        authenticators::WEBAUTHN => Some(MfaType::Webauthn),
        _ => None,
    }
}

/// The kind of a stored row, if it is one this server knows.
pub fn kind_of(row: &Authenticator) -> Option<MfaType> {
    kind_named(&row.type_)
}

/// The distinct kinds among `types`, in allauth's order
/// (`Authenticator.Type`: recovery codes, TOTP, WebAuthn).
pub fn kinds<'a>(types: impl IntoIterator<Item = &'a str>) -> Vec<MfaType> {
    let mut kinds: Vec<MfaType> = types.into_iter().filter_map(kind_named).collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

/// An authenticator as the API shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct AuthenticatorView {
    pub id: i64,
    pub kind: MfaType,
    /// Unix epoch milliseconds.
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub detail: Detail,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Detail {
    Totp,
    RecoveryCodes {
        total: usize,
        unused: usize,
        /// The unused codes themselves, when they may be shown.
        codes: Option<Vec<String>>,
    },
    Webauthn {
        name: String,
        passwordless: Option<bool>,
    },
}

/// The view of `row`, with the unused recovery codes when `sensitive`.
pub fn view(
    config: &Config,
    secret: &str,
    row: &Authenticator,
    sensitive: bool,
) -> Option<AuthenticatorView> {
    let kind = kind_of(row)?;
    let detail = match kind {
        MfaType::Totp => Detail::Totp,
        MfaType::RecoveryCodes => {
            let codes = recovery_codes_of(config, secret, row);
            let unused = codes.unused();
            Detail::RecoveryCodes {
                // For a migrated set allauth counts what is left of it.
                total: codes.all.len(),
                unused: unused.len(),
                codes: sensitive.then_some(unused),
            }
        }
        MfaType::Webauthn => {
            let data = webauthn::WebauthnData::of(row)?;
            Detail::Webauthn {
                passwordless: data.is_passwordless(),
                name: data.name,
            }
        }
    };
    Some(AuthenticatorView {
        id: row.id,
        kind,
        created_at: row.created_at,
        last_used_at: row.last_used_at,
        detail,
    })
}

/// The clear codes of a recovery-code row (none if its data is unreadable).
pub fn recovery_codes_of(config: &Config, secret: &str, row: &Authenticator) -> Codes {
    let data: RecoveryCodesData = serde_json::from_str(&row.data).unwrap_or_default();
    if let Some(migrated) = &data.migrated_codes {
        return Codes {
            all: migrated
                .iter()
                .filter_map(|c| sealed::open(secret, RECOVERY_PURPOSE, c))
                .collect(),
            used_mask: 0,
            migrated: true,
        };
    }
    let all = data
        .seed
        .as_deref()
        .and_then(|s| sealed::open(secret, RECOVERY_PURPOSE, s))
        .map(|seed| {
            recovery_codes::codes_of_seed(
                &seed,
                config.mfa.recovery_code_count,
                config.mfa.recovery_code_digits,
            )
        })
        .unwrap_or_default();
    Codes {
        all,
        used_mask: data.used_mask,
        migrated: false,
    }
}

/// The clear TOTP secret of a TOTP row.
fn totp_secret_of(secret: &str, row: &Authenticator) -> Option<String> {
    let data: TotpData = serde_json::from_str(&row.data).ok()?;
    sealed::open(secret, TOTP_PURPOSE, &data.secret)
}

/// A new TOTP row for `user_id` with `totp_secret`.
fn new_totp(secret: &str, user_id: i64, totp_secret: &str, now: i64) -> NewAuthenticator {
    let data = TotpData {
        secret: sealed::seal(secret, TOTP_PURPOSE, totp_secret),
    };
    NewAuthenticator {
        user_id,
        type_: authenticators::TOTP.to_owned(),
        data: serde_json::to_string(&data).unwrap_or_default(),
        created_at: now,
        last_step: None,
    }
}

/// A new recovery-code row for `user_id` with a fresh seed.
fn new_recovery_codes(secret: &str, user_id: i64, now: i64) -> NewAuthenticator {
    let data = RecoveryCodesData {
        seed: Some(sealed::seal(
            secret,
            RECOVERY_PURPOSE,
            &recovery_codes::generate_seed(),
        )),
        ..Default::default()
    };
    NewAuthenticator {
        user_id,
        type_: authenticators::RECOVERY_CODES.to_owned(),
        data: serde_json::to_string(&data).unwrap_or_default(),
        created_at: now,
        last_step: None,
    }
}

/// The kinds of authenticator `user_id` has, in allauth's order.
pub fn types_of_user(conn: &mut DbConnection, user_id: i64) -> Result<Vec<MfaType>, DbError> {
    let types = authenticators::types_for_user(conn, user_id)?;
    Ok(kinds(types.iter().map(String::as_str)))
}

/// [`types_of_user`] for the flows, nothing when MFA is off.
pub async fn user_types(deps: &Deps<'_>, user_id: i64) -> Result<Vec<MfaType>, Error> {
    if !deps.config.mfa.enabled {
        return Ok(Vec::new());
    }
    Ok(deps
        .db
        .run(move |conn| types_of_user(conn, user_id))
        .await?)
}

/// Which code matched, for the `mfa` record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Used {
    pub id: i64,
    pub kind: MfaType,
}

/// Checks `code` against `user_id`'s TOTP and recovery codes (allauth's
/// `BaseAuthenticateForm.clean_code`, WebAuthn aside) and uses it up: the
/// TOTP step is taken, or the recovery code marked used, atomically.
pub async fn use_code(deps: &Deps<'_>, user_id: i64, code: &str) -> Result<Option<Used>, Error> {
    let config = deps.config.clone();
    let secret = deps.secret().to_owned();
    let code = code.to_owned();
    let now = deps.now_ms;
    let now_secs = deps.now_secs();
    Ok(deps
        .db
        .run(move |conn| {
            for row in authenticators::for_user(conn, user_id)? {
                match kind_of(&row) {
                    Some(MfaType::Totp) => {
                        let Some(totp_secret) = totp_secret_of(&secret, &row) else {
                            continue;
                        };
                        let Some(step) =
                            totp::matching_step(&config.mfa, &totp_secret, &code, now_secs)
                        else {
                            continue;
                        };
                        let step = i64::try_from(step).unwrap_or(i64::MAX);
                        if authenticators::take_totp_step(conn, row.id, step, now)? {
                            return Ok(Some(Used {
                                id: row.id,
                                kind: MfaType::Totp,
                            }));
                        }
                    }
                    Some(MfaType::RecoveryCodes) => {
                        let id = row.id;
                        if use_recovery_code(conn, &config, &secret, row, &code, now)? {
                            return Ok(Some(Used {
                                id,
                                kind: MfaType::RecoveryCodes,
                            }));
                        }
                    }
                    _ => {}
                }
            }
            Ok(None)
        })
        .await?)
}

/// Marks `code` used in the recovery-code `row` if it is one of its unused
/// codes: compare-and-set on the row's version, read again on a lost race.
fn use_recovery_code(
    conn: &mut DbConnection,
    config: &Config,
    secret: &str,
    mut row: Authenticator,
    code: &str,
    now: i64,
) -> Result<bool, DbError> {
    loop {
        let codes = recovery_codes_of(config, secret, &row);
        let Some(index) = codes.find_unused(code) else {
            return Ok(false);
        };
        let mut data: RecoveryCodesData = serde_json::from_str(&row.data).unwrap_or_default();
        if let Some(migrated) = data.migrated_codes.as_mut() {
            if index < migrated.len() {
                migrated.remove(index);
            }
        } else if index < 64 {
            data.used_mask |= 1u64 << index;
        }
        let text = serde_json::to_string(&data).unwrap_or_default();
        if authenticators::replace_data(conn, row.id, row.version, &text, Some(now))? {
            return Ok(true);
        }
        match authenticators::of_type(conn, row.user_id, authenticators::RECOVERY_CODES)? {
            Some(fresh) if fresh.id == row.id => row = fresh,
            _ => return Ok(false),
        }
    }
}

/// The `data` of a TOTP row for a secret brought from elsewhere (the
/// django import), sealed as ours; `None` if the secret is not base32.
pub fn imported_totp_data(secret: &str, totp_secret: &str) -> Option<String> {
    totp::is_valid_secret(totp_secret)?;
    serde_json::to_string(&TotpData {
        secret: sealed::seal(secret, TOTP_PURPOSE, totp_secret.trim()),
    })
    .ok()
}

/// The `data` of a recovery-code row brought from elsewhere: allauth's
/// seed and used mask, or its older list of unused codes, sealed as ours.
pub fn imported_recovery_codes_data(
    secret: &str,
    seed: Option<&str>,
    used_mask: u64,
    migrated_codes: Option<&[String]>,
) -> String {
    let data = RecoveryCodesData {
        seed: seed.map(|s| sealed::seal(secret, RECOVERY_PURPOSE, s)),
        used_mask,
        migrated_codes: migrated_codes.map(|codes| {
            codes
                .iter()
                .map(|c| sealed::seal(secret, RECOVERY_PURPOSE, c))
                .collect()
        }),
        viewed_at: None,
    };
    serde_json::to_string(&data).unwrap_or_default()
}
