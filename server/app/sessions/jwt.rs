//! allauth's JWT token strategy: access and refresh tokens for app clients.
//!
//! Claims as allauth writes them: `iat`, `exp`, `sid`, `jti`, `token_use`
//! (`"access"` or `"refresh"`) and `sub` (the user id as a string). `sid`
//! is `<row id>.<tag>`, the tag a one-way digest of the hash of the
//! session's current key: never the key itself, so a leaked JWT cannot be
//! replayed as an `X-Session-Token`, and bound to that key, so cycling it (a
//! password change) ends the tokens issued before, as in allauth, whose
//! `sid` is the encrypted key. RS256 tokens carry
//! the key's RFC 7638 thumbprint as `kid`; HS256 ones sign with the
//! configured key or `server.secret_key`. Verification accepts the
//! configured algorithm only (no `none`, no RS256/HS256 confusion) and no
//! clock leeway. Refresh tokens are tracked per session in the
//! `refresh_tokens` table; using one is a conditional DELETE.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::app;
use crate::app::security::codes;
use crate::app::security::secrets::constant_time_eq;
use crate::config::{Config, JwtAlgorithm, TokenStrategy};
use crate::db::{refresh_tokens, sessions as session_rows, Db};

/// What a token is for (`token_use`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenUse {
    Access,
    Refresh,
}

impl TokenUse {
    fn as_str(self) -> &'static str {
        match self {
            TokenUse::Access => "access",
            TokenUse::Refresh => "refresh",
        }
    }
}

/// The claims this server writes and requires, in allauth's order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    pub iat: i64,
    pub exp: i64,
    pub sid: String,
    pub jti: String,
    pub token_use: String,
    pub sub: String,
}

impl Claims {
    /// The session row named by `sid`.
    pub fn session_id(&self) -> Option<i64> {
        self.sid.split_once('.')?.0.parse().ok()
    }

    /// Whether `sid` was issued under the session key whose hash is
    /// `key_hash` (constant time).
    pub fn names_key(&self, key_hash: &str) -> bool {
        self.sid
            .split_once('.')
            .is_some_and(|(_, tag)| constant_time_eq(tag.as_bytes(), key_tag(key_hash).as_bytes()))
    }
}

/// The `sid` of tokens for session row `session_id` while its key hashes to
/// `key_hash`.
pub fn sid_for(session_id: i64, key_hash: &str) -> String {
    format!("{session_id}.{}", key_tag(key_hash))
}

/// 128 bits of a domain-separated SHA-256 of the key hash, base64url.
fn key_tag(key_hash: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"allauth-server jwt sid\0")
        .chain_update(key_hash.as_bytes())
        .finalize();
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// The public half of an RS256 key as a JWK (RSA, `use` = `sig`).
#[derive(Debug, Clone)]
pub struct PublicJwk {
    pub kid: String,
    pub n: String,
    pub e: String,
}

/// The signing and verifying keys, built once at start-up.
pub struct JwtKeys {
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Option<PublicJwk>,
    /// Access tokens whose signature checked out, by the SHA-256 of the
    /// token: a token does not change, so only its expiry is looked at
    /// again. At most [`VERIFIED_TOKENS`].
    verified: std::sync::Mutex<std::collections::HashMap<String, Claims>>,
}

/// How many verified access tokens [`JwtKeys`] remembers.
const VERIFIED_TOKENS: usize = 10_000;

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.jwk.as_ref().map(|j| j.kid.as_str()))
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    /// The keys of the configured JWT strategy; `None` with the session strategy.
    pub fn from_config(config: &Config) -> Result<Option<JwtKeys>, String> {
        let headless = &config.headless;
        if headless.token_strategy != TokenStrategy::Jwt {
            return Ok(None);
        }
        let material = headless
            .jwt_private_key_material()
            .map_err(|e| e.to_string())?;
        match headless.jwt_algorithm {
            JwtAlgorithm::HS256 => {
                let secret = match &material {
                    Some(key) => key.expose().as_bytes().to_vec(),
                    None => config
                        .server
                        .secret_key
                        .as_ref()
                        .map(|k| k.expose().as_bytes().to_vec())
                        .ok_or("HS256 needs a key or server.secret_key")?,
                };
                Ok(Some(JwtKeys {
                    algorithm: Algorithm::HS256,
                    encoding: EncodingKey::from_secret(&secret),
                    decoding: DecodingKey::from_secret(&secret),
                    jwk: None,
                    verified: Default::default(),
                }))
            }
            JwtAlgorithm::RS256 => {
                let pem = material.ok_or("RS256 needs headless.jwt_private_key(_file)")?;
                let encoding = EncodingKey::from_rsa_pem(pem.expose().as_bytes())
                    .map_err(|e| format!("headless JWT key: {e}"))?;
                let (n, e) = rsa_public_components(pem.expose())
                    .ok_or("headless JWT key: not an RSA private key in PEM")?;
                let (n, e) = (URL_SAFE_NO_PAD.encode(n), URL_SAFE_NO_PAD.encode(e));
                let decoding = DecodingKey::from_rsa_components(&n, &e)
                    .map_err(|e| format!("headless JWT key: {e}"))?;
                let kid = jwk_thumbprint(&n, &e);
                Ok(Some(JwtKeys {
                    algorithm: Algorithm::RS256,
                    encoding,
                    decoding,
                    jwk: Some(PublicJwk { kid, n, e }),
                    verified: Default::default(),
                }))
            }
        }
    }

    /// A signed token for `sub` in session `sid`, valid `expires_in` seconds
    /// from `now_s`.
    pub fn issue(
        &self,
        token_use: TokenUse,
        sub: &str,
        sid: &str,
        now_s: i64,
        expires_in: u64,
    ) -> Result<(String, Claims), app::Error> {
        let claims = Claims {
            iat: now_s,
            exp: now_s.saturating_add(i64::try_from(expires_in).unwrap_or(i64::MAX / 2)),
            sid: sid.to_string(),
            // A random (version 4) UUID, as allauth's `jti`.
            jti: uuid::Uuid::new_v4().to_string(),
            token_use: token_use.as_str().to_string(),
            sub: sub.to_string(),
        };
        let mut header = Header::new(self.algorithm);
        header.kid = self.jwk.as_ref().map(|j| j.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| app::Error::Internal(format!("signing a JWT: {e}")))?;
        Ok((token, claims))
    }

    /// The claims of a valid token of the given use: signed by our key with
    /// the configured algorithm, not expired (no leeway).
    pub fn verify(&self, token: &str, token_use: TokenUse) -> Option<Claims> {
        if token_use != TokenUse::Access {
            return self.check(token, token_use);
        }
        // jsonwebtoken's expiry rule with no leeway: `exp` not before now.
        let now = i64::try_from(jsonwebtoken::get_current_timestamp()).unwrap_or(i64::MAX);
        let digest = codes::token_hash(token);
        if let Ok(verified) = self.verified.lock() {
            if let Some(claims) = verified.get(&digest) {
                return (claims.exp >= now).then(|| claims.clone());
            }
        }
        let claims = self.check(token, token_use)?;
        if let Ok(mut verified) = self.verified.lock() {
            if verified.len() >= VERIFIED_TOKENS {
                // Make room: expired ones first, else any one.
                verified.retain(|_, c| c.exp >= now);
                if verified.len() >= VERIFIED_TOKENS {
                    let victim = verified.keys().next().cloned();
                    victim.map(|key| verified.remove(&key));
                }
            }
            verified.insert(digest, claims.clone());
        }
        Some(claims)
    }

    /// [`JwtKeys::verify`] without the memory of verified tokens.
    fn check(&self, token: &str, token_use: TokenUse) -> Option<Claims> {
        let mut validation = Validation::new(self.algorithm);
        validation.leeway = 0;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).ok()?;
        (data.claims.token_use == token_use.as_str()).then_some(data.claims)
    }

    /// The JWK Set of the public key (RS256 only).
    pub fn jwks(&self) -> Option<&PublicJwk> {
        self.jwk.as_ref()
    }
}

/// The tokens handed out when an app client becomes authenticated.
#[derive(Debug)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
}

/// A fresh access/refresh pair for `user_id` in session `session_id` (whose
/// key hashes to `key_hash`); the refresh token is recorded with the session.
pub async fn issue_pair(
    keys: &JwtKeys,
    config: &Config,
    db: &Db,
    user_id: i64,
    session_id: i64,
    key_hash: &str,
    now_ms: i64,
) -> Result<TokenPair, app::Error> {
    let (sub, sid, now_s) = (
        user_id.to_string(),
        sid_for(session_id, key_hash),
        now_ms / 1000,
    );
    let headless = &config.headless;
    let (access_token, _) = keys.issue(
        TokenUse::Access,
        &sub,
        &sid,
        now_s,
        headless.jwt_access_token_expires_in,
    )?;
    let (refresh_token, claims) = keys.issue(
        TokenUse::Refresh,
        &sub,
        &sid,
        now_s,
        headless.jwt_refresh_token_expires_in,
    )?;
    let row = refresh_tokens::NewRefreshToken {
        jti: claims.jti,
        session_id,
        expires_at: claims.exp.saturating_mul(1000),
    };
    db.run(move |conn| refresh_tokens::insert(conn, &row))
        .await?;
    Ok(TokenPair {
        access_token,
        refresh_token,
    })
}

/// `tokens/refresh`: a new access token (and, rotating, a new refresh
/// token) for a live refresh token of a live session still under the key
/// the token names. Anything else is allauth's bare 400. Like allauth's
/// session save, a refresh moves the session's expiry `session.cookie_age`
/// on.
pub async fn refresh(
    keys: Option<&JwtKeys>,
    config: &Config,
    db: &Db,
    token: &str,
    now_ms: i64,
) -> Result<(String, Option<String>), app::Error> {
    // Django's CharField strips the value; an empty one is "required".
    let token = token.trim();
    if token.is_empty() {
        return Err(app::Error::Invalid(vec![app::account::accounts::required(
            "refresh_token",
        )]));
    }
    let refused = || app::Error::Invalid(Vec::new());
    let keys = keys.ok_or_else(refused)?;
    let claims = keys.verify(token, TokenUse::Refresh).ok_or_else(refused)?;
    let session_id = claims.session_id().ok_or_else(refused)?;
    let loaded = db
        .run(move |conn| {
            session_rows::load_with_user(conn, &session_rows::SessionKey::Id(session_id), now_ms)
        })
        .await?;
    let owner_matches = matches!(&loaded, Some((session, Some(user), _))
        if user.id.to_string() == claims.sub && claims.names_key(&session.key_hash));
    if !owner_matches {
        return Err(refused());
    }
    let headless = &config.headless;
    let rotate = headless.jwt_rotate_refresh_token;
    let jti = claims.jti.clone();
    let (access_token, _) = keys.issue(
        TokenUse::Access,
        &claims.sub,
        &claims.sid,
        now_ms / 1000,
        headless.jwt_access_token_expires_in,
    )?;
    let next = if rotate {
        let (next, next_claims) = keys.issue(
            TokenUse::Refresh,
            &claims.sub,
            &claims.sid,
            now_ms / 1000,
            headless.jwt_refresh_token_expires_in,
        )?;
        Some((next, next_claims))
    } else {
        None
    };
    let row = next.as_ref().map(|(_, c)| refresh_tokens::NewRefreshToken {
        jti: c.jti.clone(),
        session_id,
        expires_at: c.exp.saturating_mul(1000),
    });
    let expires_at = config.session.expires_at(now_ms);
    let accepted = db
        .transaction(move |conn| {
            let live = match row {
                Some(row) => {
                    let used = refresh_tokens::consume(conn, &jti, session_id, now_ms)?;
                    if used {
                        refresh_tokens::insert(conn, &row)?;
                    }
                    used
                }
                None => refresh_tokens::is_live(conn, &jti, session_id, now_ms)?,
            };
            if live {
                session_rows::extend(conn, session_id, expires_at)?;
            }
            Ok(live)
        })
        .await?;
    if !accepted {
        return Err(refused());
    }
    Ok((access_token, next.map(|(t, _)| t)))
}

/// RFC 7638 thumbprint of an RSA public key (base64url members `n`, `e`).
fn jwk_thumbprint(n: &str, e: &str) -> String {
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// The modulus and public exponent (big-endian, no leading zeros) of an RSA
/// private key in PEM, PKCS#1 (`RSA PRIVATE KEY`) or PKCS#8 (`PRIVATE KEY`).
fn rsa_public_components(pem_text: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    use pkcs1::der::Decode;
    let block = pem::parse(pem_text).ok()?;
    let key = match block.tag() {
        "RSA PRIVATE KEY" => pkcs1::RsaPrivateKey::from_der(block.contents()).ok()?,
        "PRIVATE KEY" => {
            let info = pkcs8::PrivateKeyInfo::from_der(block.contents()).ok()?;
            if info.algorithm.oid != pkcs1::ALGORITHM_OID {
                return None;
            }
            let key = pkcs1::RsaPrivateKey::from_der(info.private_key).ok()?;
            return Some(public_parts(&key));
        }
        _ => return None,
    };
    Some(public_parts(&key))
}

fn public_parts(key: &pkcs1::RsaPrivateKey<'_>) -> (Vec<u8>, Vec<u8>) {
    let strip = |v: &[u8]| {
        let start = v.iter().position(|&b| b != 0).unwrap_or(v.len());
        v[start..].to_vec()
    };
    (
        strip(key.modulus.as_bytes()),
        strip(key.public_exponent.as_bytes()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_parts_of_both_pem_forms_agree() {
        let pkcs8 = include_str!("../../../tests/api/fixtures/jwt-test-key.pkcs8.pem");
        let pkcs1 = include_str!("../../../tests/api/fixtures/jwt-test-key.pkcs1.pem");
        let (n, e) = rsa_public_components(pkcs8).expect("PKCS#8");
        assert_eq!(rsa_public_components(pkcs1), Some((n.clone(), e.clone())));
        assert_eq!(e, vec![0x01, 0x00, 0x01]);
        assert_eq!(n.len(), 256, "a 2048-bit modulus without a leading zero");
        assert!(rsa_public_components(
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
        )
        .is_none());
        assert!(rsa_public_components("not a pem").is_none());
    }

    fn hs256() -> JwtKeys {
        let secret = b"a test secret of enough length!!";
        JwtKeys {
            algorithm: Algorithm::HS256,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            jwk: None,
            verified: Default::default(),
        }
    }

    #[test]
    fn a_remembered_access_token_still_expires() {
        let keys = hs256();
        let now = i64::try_from(jsonwebtoken::get_current_timestamp()).unwrap_or(0);
        // Valid to the end of this second only.
        let (token, _) = keys
            .issue(TokenUse::Access, "1", "1.x", now, 0)
            .expect("issued");
        assert!(keys.verify(&token, TokenUse::Access).is_some());
        assert_eq!(keys.verified.lock().map(|v| v.len()).unwrap_or(0), 1);
        assert!(
            keys.verify(&token, TokenUse::Access).is_some(),
            "remembered"
        );
        assert!(
            keys.verify(&token, TokenUse::Refresh).is_none(),
            "its use still counts"
        );
        std::thread::sleep(std::time::Duration::from_millis(2100));
        assert!(keys.verify(&token, TokenUse::Access).is_none(), "expired");
        // Tampered tokens are checked, not remembered.
        let tampered = format!("{token}x");
        assert!(keys.verify(&tampered, TokenUse::Access).is_none());
    }
}
