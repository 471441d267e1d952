//! Password hashing: Argon2id for every new hash, verification of Django's formats for imported users, all off the async executor on a bounded pool.
//!
//! * New hashes are Argon2id PHC strings,
//!   `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>` (see the constants for
//!   the parameters and why).
//! * [`Passwords::verify`] also accepts what Django's `PASSWORD_HASHERS`
//!   write, so a user table imported from a django-allauth site keeps
//!   working: `pbkdf2_sha256$<iterations>$<salt>$<base64>` (Django's
//!   default), `pbkdf2_sha1$…`, `argon2$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>`
//!   (Django's `Argon2PasswordHasher`: the PHC string behind an `argon2`
//!   prefix; `argon2i`/`argon2d` too), `bcrypt_sha256$$2b$<cost>$…` (the
//!   password's SHA-256 hex digest fed to bcrypt) and `bcrypt$$2b$…`.
//!   `scrypt$<n>$<salt>$<r>$<p>$<base64>` (Django's `ScryptPasswordHasher`,
//!   64-byte output; `n` a power of two, the memory it asks for bounded by
//!   [`SCRYPT_MAX_MEMORY`] and `p` by [`SCRYPT_MAX_PARALLELISM`]). Django's other hashers (the unsalted and
//!   MD5/SHA1 ones) are not accepted: such a hash never verifies (logged as
//!   a warning).
//!   A successful verification of anything but an Argon2id hash at least as
//!   strong as ours reports `needs_upgrade`: the caller then stores
//!   [`Passwords::hash`] of the password it just checked.
//! * Django marks an unusable password with a leading `!`; such a value (and
//!   an empty or malformed one) never verifies.
//! * Timing: verifying against a value that cannot match, and
//!   [`Passwords::verify_dummy`] (for an unknown user, or one without a usable
//!   password), do the same Argon2id work as a real verification, so the
//!   answer time does not tell whether an account exists (Django's
//!   `verify_password` "fake runtime").
//! * Passwords longer than `account.password_max_length` characters are
//!   refused before any hashing ([`Passwords::check_length`]): Argon2 reads
//!   the whole password, so its length must be bounded (at most four bytes a
//!   character).
//! * The work runs on tokio's blocking pool behind a semaphore with one
//!   permit per CPU: at most that many hashes (each holding
//!   [`ARGON2_MEMORY_KIB`] of memory) at once; further callers wait their
//!   turn without occupying an executor thread.
//! * Argon2's working memory is allocated once per permit and reused
//!   ([`Arenas`]): a server under login load holds at most one buffer per
//!   CPU, instead of leaving freed 19 MiB blocks behind in the allocator's
//!   arenas (which grew RSS to gigabytes under bursts of logins). After
//!   [`IDLE_RELEASE`] without a hash they are freed, so an idle server goes
//!   back to its small size.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the hashing buffers outlive the last hash.
pub const IDLE_RELEASE: Duration = Duration::from_secs(20);

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use tokio::sync::Semaphore;

use super::secrets::{constant_time_eq, hex, random_bytes};
use crate::app::{Error, FieldError};
use crate::config::AccountConfig;

/// Argon2id memory cost in KiB: 19 MiB. OWASP's Password Storage Cheat Sheet
/// lists m=19 MiB, t=2, p=1 as its baseline Argon2id configuration (the
/// `argon2` crate's default too); it keeps a login near 20–50 ms of one core
/// and the memory of [`Passwords`]' pool (one hash per CPU) small.
pub const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
/// Argon2id passes over memory (OWASP: 2 with 19 MiB).
pub const ARGON2_ITERATIONS: u32 = 2;
/// Argon2id lanes (OWASP: 1). Parallelism inside one hash buys nothing here:
/// the pool already keeps every core busy with separate requests.
pub const ARGON2_PARALLELISM: u32 = 1;
/// Bytes of hash output (32, the PHC recommendation and the crate default).
pub const ARGON2_OUTPUT_LEN: usize = 32;
/// Bytes of random salt per hash (16: RFC 9106's recommendation, and
/// Django's 128-bit salt entropy).
pub const SALT_LEN: usize = 16;
/// [`SALT_LEN`] bytes in unpadded base64, as a PHC string holds them.
const SALT_B64_LEN: usize = (SALT_LEN * 4).div_ceil(3);
/// The salt of [`Passwords::verify_dummy`]'s work (any constant will do: its
/// result is thrown away).
const DUMMY_SALT: [u8; SALT_LEN] = *b"allauth-dummy-sl";
/// Django's prefix of an unusable password.
const UNUSABLE_PREFIX: &str = "!";

/// The outcome of [`Passwords::verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// The password is right. With `needs_upgrade`, store a fresh
    /// [`Passwords::hash`] of it (an older format or weaker parameters).
    Ok { needs_upgrade: bool },
    /// Wrong password, unusable or unrecognised stored value.
    Mismatch,
}

impl Verified {
    pub fn is_ok(self) -> bool {
        matches!(self, Verified::Ok { .. })
    }
}

/// The password hasher. Build one at start-up and clone it freely: clones
/// share the pool's semaphore.
#[derive(Clone, Debug)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    arenas: Arc<Arenas>,
    /// Argon2 computations run (hashes, verifications, dummy work).
    computed: Arc<std::sync::atomic::AtomicU64>,
    max_length: usize,
    params: Params,
    #[cfg(test)]
    probe: Arc<tests::Probe>,
}

impl Passwords {
    /// The production hasher: OWASP parameters, `account.password_max_length`,
    /// one concurrent hash per CPU.
    pub fn new(config: &AccountConfig) -> Passwords {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        Passwords::with_pool_size(config, cpus)
    }

    /// Like [`Passwords::new`] with at most `max_concurrent` (≥ 1) hashes at once.
    pub fn with_pool_size(config: &AccountConfig, max_concurrent: usize) -> Passwords {
        let params = Params::new(
            ARGON2_MEMORY_KIB,
            ARGON2_ITERATIONS,
            ARGON2_PARALLELISM,
            Some(ARGON2_OUTPUT_LEN),
        )
        .unwrap_or_default();
        Passwords::build(params, config.password_max_length, max_concurrent)
    }

    fn build(params: Params, max_length: u32, max_concurrent: usize) -> Passwords {
        Passwords {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            arenas: Arc::new(Arenas::new(params.block_count())),
            computed: Arc::default(),
            max_length: usize::try_from(max_length).unwrap_or(usize::MAX),
            params,
            #[cfg(test)]
            probe: Arc::default(),
        }
    }

    /// How many Argon2 working buffers are held: never more than the
    /// pool's size, however many hashes ran.
    pub fn buffers_allocated(&self) -> usize {
        self.arenas.allocated.load(Ordering::Relaxed)
    }

    /// Frees the working buffers when no hash ran for `idle` (those in
    /// use stay); how many were freed. The server calls it periodically.
    pub fn release_idle_buffers(&self, idle: Duration) -> usize {
        self.arenas.release_idle(idle)
    }

    /// How many more hashes could start right now without waiting.
    /// How many Argon2 computations ran: a failed and a successful path
    /// that must cost the same can be compared by it.
    pub fn computations(&self) -> u64 {
        self.computed.load(Ordering::Relaxed)
    }

    pub fn available_permits(&self) -> usize {
        self.permits.available_permits()
    }

    /// Refuses a password longer than `account.password_max_length` bytes:
    /// Django's `max_length` error (`param` is left to the caller).
    pub fn check_length(&self, password: &str) -> Result<(), FieldError> {
        // The message counts characters, as Django's does; so does the check.
        let length = password.chars().count();
        if length > self.max_length {
            return Err(FieldError::new(
                "max_length",
                None,
                format!(
                    "Ensure this value has at most {} characters (it has {}).",
                    self.max_length, length
                ),
            ));
        }
        Ok(())
    }

    /// A new Argon2id PHC string for `password` with a fresh random salt.
    /// A too long password is [`Error::Invalid`] (see [`Passwords::check_length`]).
    pub async fn hash(&self, password: &str) -> Result<String, Error> {
        self.check_length(password)
            .map_err(|e| Error::Invalid(vec![e]))?;
        let password = password.to_owned();
        let params = self.params.clone();
        self.run(move |memory| hash_argon2id(&params, password.as_bytes(), memory))
            .await?
    }

    /// Checks `password` against a stored hash (ours or Django's). A
    /// password longer than the maximum is a [`Verified::Mismatch`] at once:
    /// no stored hash of ours can match it.
    pub async fn verify(&self, password: &str, stored: &str) -> Result<Verified, Error> {
        if self.check_length(password).is_err() {
            return Ok(Verified::Mismatch);
        }
        let password = password.to_owned();
        let stored = stored.to_owned();
        let params = self.params.clone();
        self.run(move |memory| verify_stored(&params, password.as_bytes(), &stored, memory))
            .await
    }

    /// The work of one verification, against nothing: call it where a user
    /// is unknown or has no usable password, so that the answer takes as
    /// long as for an existing account.
    pub async fn verify_dummy(&self, password: &str) -> Result<(), Error> {
        if self.check_length(password).is_err() {
            return Ok(());
        }
        let password = password.to_owned();
        let params = self.params.clone();
        self.run(move |memory| dummy_work(&params, password.as_bytes(), memory))
            .await
    }

    /// Runs `work` on the blocking pool once a permit is free, with one of
    /// the pool's Argon2 buffers. The permit moves into the blocking task,
    /// so it stays taken until the work ends even when the caller's future
    /// is dropped midway.
    async fn run<T, F>(&self, work: F) -> Result<T, Error>
    where
        F: FnOnce(&mut [Block]) -> T + Send + 'static,
        T: Send + 'static,
    {
        let asked = std::time::Instant::now();
        crate::metrics::hash_waiting(1.0);
        let permit = Arc::clone(&self.permits).acquire_owned().await;
        crate::metrics::hash_waiting(-1.0);
        let permit = permit.map_err(|_| Error::Internal("password hashing pool closed".into()))?;
        let waited = asked.elapsed();
        #[cfg(test)]
        let probe = Arc::clone(&self.probe);
        let arenas = Arc::clone(&self.arenas);
        self.computed.fetch_add(1, Ordering::Relaxed);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            #[cfg(test)]
            let _inside = probe.enter();
            let started = std::time::Instant::now();
            let mut memory = arenas.take();
            let result = work(&mut memory);
            arenas.give(memory);
            crate::metrics::hash_done(waited, started.elapsed());
            result
        })
        .await
        .map_err(|e| Error::Internal(format!("password hashing task: {e}")))
    }
}

/// Argon2 working memory, one buffer per permit of the pool, allocated on
/// first use and reused for every hash after. Hashes run only while holding
/// a permit, so no more buffers than permits are ever allocated.
#[derive(Debug)]
struct Arenas {
    free: Mutex<Free>,
    /// Blocks of one buffer: the block count of our parameters.
    blocks: usize,
    /// Buffers held now (free or in use).
    allocated: AtomicUsize,
}

/// The buffers not in use, and when one was last given back.
#[derive(Debug, Default)]
struct Free {
    buffers: Vec<Vec<Block>>,
    last_used: Option<Instant>,
}

impl Arenas {
    fn new(blocks: usize) -> Arenas {
        Arenas {
            free: Mutex::new(Free::default()),
            blocks,
            allocated: AtomicUsize::new(0),
        }
    }

    fn take(&self) -> Vec<Block> {
        let reused = self
            .free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .buffers
            .pop();
        reused.unwrap_or_else(|| {
            self.allocated.fetch_add(1, Ordering::Relaxed);
            vec![Block::default(); self.blocks]
        })
    }

    fn give(&self, buffer: Vec<Block>) {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        free.buffers.push(buffer);
        free.last_used = Some(Instant::now());
    }

    /// Frees the unused buffers when none was used for `idle`: a server
    /// that had a burst of logins goes back to its idle size (each buffer
    /// is a mapping of its own, returned to the system when dropped).
    fn release_idle(&self, idle: Duration) -> usize {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if free.last_used.is_some_and(|at| at.elapsed() < idle) {
            return 0;
        }
        let released = free.buffers.len();
        free.buffers.clear();
        free.buffers.shrink_to_fit();
        self.allocated.fetch_sub(released, Ordering::Relaxed);
        released
    }
}

/// Argon2 of `password` and `salt` into `out`, in `memory` when it is large
/// enough for `params` (ours always are); a stored hash with a larger
/// memory cost (say, imported from Django) gets its own buffer, once: it is
/// rehashed with ours after the login.
fn argon2_into(
    algorithm: Algorithm,
    version: Version,
    params: Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    memory: &mut [Block],
) -> argon2::Result<()> {
    let needed = params.block_count();
    let hasher = Argon2::new(algorithm, version, params);
    if needed <= memory.len() {
        hasher.hash_password_into_with_memory(password, salt, out, &mut memory[..needed])
    } else {
        hasher.hash_password_into(password, salt, out)
    }
}

fn hash_argon2id(params: &Params, password: &[u8], memory: &mut [Block]) -> Result<String, Error> {
    let salt_bytes = random_bytes::<SALT_LEN>();
    let salt = SaltString::encode_b64(&salt_bytes)
        .map_err(|e| Error::Internal(format!("argon2 salt: {e}")))?;
    let mut out = [0u8; ARGON2_OUTPUT_LEN];
    argon2_into(
        Algorithm::Argon2id,
        Version::V0x13,
        params.clone(),
        password,
        &salt_bytes,
        &mut out,
        memory,
    )
    .map_err(|e| Error::Internal(format!("argon2 hash: {e}")))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params)
            .map_err(|e| Error::Internal(format!("argon2 params: {e}")))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| Error::Internal(format!("argon2 output: {e}")))?),
    };
    Ok(phc.to_string())
}

fn dummy_work(params: &Params, password: &[u8], memory: &mut [Block]) {
    let mut out = [0u8; ARGON2_OUTPUT_LEN];
    let _ = argon2_into(
        Algorithm::Argon2id,
        Version::V0x13,
        params.clone(),
        password,
        &DUMMY_SALT,
        &mut out,
        memory,
    );
}

/// The formats [`verify_stored`] knows.
enum Stored<'a> {
    /// A PHC string (`$argon2…`); `django` when it came with Django's
    /// `argon2` prefix.
    Argon2 {
        phc: &'a str,
        django: bool,
    },
    Pbkdf2 {
        sha1: bool,
        iterations: &'a str,
        salt: &'a str,
        hash: &'a str,
    },
    /// The bcrypt string (`$2b$…`); `sha256` for Django's `bcrypt_sha256`.
    Bcrypt {
        mcf: &'a str,
        sha256: bool,
    },
    Scrypt {
        salt: &'a str,
        n: &'a str,
        r: &'a str,
        p: &'a str,
        hash: &'a str,
    },
    Unusable,
    Unknown,
}

fn identify(stored: &str) -> Stored<'_> {
    if stored.is_empty() || stored.starts_with(UNUSABLE_PREFIX) {
        return Stored::Unusable;
    }
    if stored.starts_with("$argon2") {
        return Stored::Argon2 {
            phc: stored,
            django: false,
        };
    }
    let Some((algorithm, rest)) = stored.split_once('$') else {
        return Stored::Unknown;
    };
    match algorithm {
        "argon2" => Stored::Argon2 {
            phc: &stored["argon2".len()..],
            django: true,
        },
        "pbkdf2_sha256" | "pbkdf2_sha1" => {
            let mut parts = rest.splitn(3, '$');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(iterations), Some(salt), Some(hash)) => Stored::Pbkdf2 {
                    sha1: algorithm == "pbkdf2_sha1",
                    iterations,
                    salt,
                    hash,
                },
                _ => Stored::Unknown,
            }
        }
        "bcrypt_sha256" | "bcrypt" => Stored::Bcrypt {
            mcf: rest,
            sha256: algorithm == "bcrypt_sha256",
        },
        "scrypt" => {
            let parts: Vec<&str> = rest.splitn(5, '$').collect();
            match parts[..] {
                [n, salt, r, p, hash] => Stored::Scrypt {
                    salt,
                    n,
                    r,
                    p,
                    hash,
                },
                _ => Stored::Unknown,
            }
        }
        _ => Stored::Unknown,
    }
}

/// Blocking verification of `password` against `stored`.
fn verify_stored(params: &Params, password: &[u8], stored: &str, memory: &mut [Block]) -> Verified {
    let outcome = match identify(stored) {
        Stored::Argon2 { phc, django } => verify_argon2(params, password, phc, django, memory),
        Stored::Pbkdf2 {
            sha1,
            iterations,
            salt,
            hash,
        } => verify_pbkdf2(sha1, password, iterations, salt, hash),
        Stored::Bcrypt { mcf, sha256 } => {
            let input = if sha256 {
                // Django hashes first so bcrypt's 72-byte cut never bites.
                hex(&Sha256::digest(password)).into_bytes()
            } else {
                password.to_vec()
            };
            bcrypt::verify(&input, mcf)
                .map(|ok| {
                    ok.then_some(Verified::Ok {
                        needs_upgrade: true,
                    })
                })
                .map_err(|e| e.to_string())
        }
        Stored::Scrypt {
            salt,
            n,
            r,
            p,
            hash,
        } => verify_scrypt(password, salt, n, r, p, hash),
        Stored::Unusable => {
            dummy_work(params, password, memory);
            return Verified::Mismatch;
        }
        Stored::Unknown => Err("unsupported password hash format".to_owned()),
    };
    match outcome {
        Ok(Some(verified)) => verified,
        Ok(None) => Verified::Mismatch,
        Err(why) => {
            // Never log the value itself: it is a password hash.
            tracing::warn!(reason = %why, "stored password hash cannot be verified");
            dummy_work(params, password, memory);
            Verified::Mismatch
        }
    }
}

/// `Ok(Some)` on a match, `Ok(None)` on a wrong password, `Err` for a value
/// that cannot be checked.
fn verify_argon2(
    params: &Params,
    password: &[u8],
    phc: &str,
    django: bool,
    memory: &mut [Block],
) -> Result<Option<Verified>, String> {
    let fail = |e: &dyn std::fmt::Display| format!("argon2 hash: {e}");
    let hash = PasswordHash::new(phc).map_err(|e| fail(&e))?;
    let algorithm = Algorithm::try_from(hash.algorithm).map_err(|e| fail(&e))?;
    let version = hash
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|e| fail(&e))?
        .unwrap_or_default();
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return Err("argon2 hash: no salt or no output".into());
    };
    let theirs = Params::try_from(&hash).map_err(|e| fail(&e))?;
    let mut salt_buf = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_buf).map_err(|e| fail(&e))?;
    let mut out = vec![0u8; expected.len()];
    argon2_into(algorithm, version, theirs, password, salt, &mut out, memory)
        .map_err(|e| fail(&e))?;
    // `Output`'s equality is constant-time.
    let computed = Output::new(&out).map_err(|e| fail(&e))?;
    if computed != expected {
        return Ok(None);
    }
    Ok(Some(Verified::Ok {
        // Django's prefixed format is rewritten in ours, so the column
        // converges on one format.
        needs_upgrade: django || weaker_than(&hash, params),
    }))
}

/// Whether a (verified) Argon2 hash is not Argon2id v1.3 or any of its
/// costs, its salt or its output is smaller than ours.
fn weaker_than(hash: &PasswordHash<'_>, ours: &Params) -> bool {
    let Ok(theirs) = Params::try_from(hash) else {
        return true;
    };
    hash.algorithm.as_str() != Algorithm::Argon2id.as_str()
        || hash.version != Some(Version::V0x13.into())
        || theirs.m_cost() < ours.m_cost()
        || theirs.t_cost() < ours.t_cost()
        || theirs.p_cost() < ours.p_cost()
        || hash.hash.is_none_or(|h| h.len() < ARGON2_OUTPUT_LEN)
        || hash.salt.is_none_or(|s| s.len() < SALT_B64_LEN)
}

fn verify_pbkdf2(
    sha1: bool,
    password: &[u8],
    iterations: &str,
    salt: &str,
    hash: &str,
) -> Result<Option<Verified>, String> {
    let iterations: u32 = iterations
        .parse()
        .ok()
        .filter(|&n| n > 0)
        .ok_or("pbkdf2 iteration count")?;
    let expected = STANDARD
        .decode(hash)
        .map_err(|_| "pbkdf2 hash is not base64")?;
    let digest_len = if sha1 { 20 } else { 32 };
    if expected.len() != digest_len {
        return Err("pbkdf2 hash has the wrong length".into());
    }
    let mut computed = vec![0u8; digest_len];
    if sha1 {
        pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password, salt.as_bytes(), iterations, &mut computed);
    } else {
        pbkdf2::pbkdf2_hmac::<Sha256>(password, salt.as_bytes(), iterations, &mut computed);
    }
    Ok(
        constant_time_eq(&computed, &expected).then_some(Verified::Ok {
            needs_upgrade: true,
        }),
    )
}

/// The most memory (bytes) a stored scrypt hash may make us spend: 128·n·r
/// (the lanes of `p` run one after the other on the same block). Django's
/// default (n=2^14, r=8) needs 16 MiB; a hash asking for more than four
/// times that is refused rather than allowed to exhaust the server.
pub const SCRYPT_MAX_MEMORY: u64 = 64 * 1024 * 1024;
/// The most lanes (time cost) of a stored scrypt hash: Django's default is 5.
pub const SCRYPT_MAX_PARALLELISM: u32 = 16;

/// Django's scrypt output length, bytes.
const SCRYPT_OUTPUT_LEN: usize = 64;

fn verify_scrypt(
    password: &[u8],
    salt: &str,
    n: &str,
    r: &str,
    p: &str,
    hash: &str,
) -> Result<Option<Verified>, String> {
    let number = |s: &str, what: &str| -> Result<u32, String> {
        s.parse::<u32>()
            .ok()
            .filter(|&v| v > 0)
            .ok_or_else(|| format!("scrypt {what}"))
    };
    let (n, r, p) = (number(n, "n")?, number(r, "r")?, number(p, "p")?);
    if !n.is_power_of_two() || n < 2 {
        return Err("scrypt n is not a power of two".into());
    }
    let memory = 128 * u64::from(n) * u64::from(r);
    if memory > SCRYPT_MAX_MEMORY || p > SCRYPT_MAX_PARALLELISM {
        return Err("scrypt parameters ask for too much memory".into());
    }
    let log_n = u8::try_from(n.trailing_zeros()).map_err(|_| "scrypt n")?;
    let params = scrypt::Params::new(log_n, r, p).map_err(|e| format!("scrypt: {e}"))?;
    let expected = STANDARD
        .decode(hash)
        .map_err(|_| "scrypt hash is not base64")?;
    if expected.len() != SCRYPT_OUTPUT_LEN {
        return Err("scrypt hash has the wrong length".into());
    }
    let mut computed = [0u8; SCRYPT_OUTPUT_LEN];
    scrypt::scrypt(password, salt.as_bytes(), &params, &mut computed)
        .map_err(|e| format!("scrypt: {e}"))?;
    Ok(
        constant_time_eq(&computed, &expected).then_some(Verified::Ok {
            needs_upgrade: true,
        }),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    use super::*;

    /// Counts the blocking tasks inside the pool (test builds only).
    #[derive(Debug, Default)]
    pub(super) struct Probe {
        inside: AtomicUsize,
        peak: AtomicUsize,
        /// Milliseconds each task lingers, so that tasks would overlap if
        /// the pool let them.
        linger_ms: AtomicUsize,
    }

    pub(super) struct Inside<'a>(&'a Probe);

    impl Probe {
        pub(super) fn enter(&self) -> Inside<'_> {
            let now = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            let linger = self.linger_ms.load(Ordering::SeqCst);
            if linger > 0 {
                std::thread::sleep(Duration::from_millis(linger as u64));
            }
            Inside(self)
        }
    }

    impl Drop for Inside<'_> {
        fn drop(&mut self) {
            self.0.inside.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Cheap parameters (Argon2 at 64 KiB, one pass) so that unit tests in
    /// debug builds stay fast; the production parameters are tested once.
    fn cheap(max_concurrent: usize) -> Passwords {
        let params = Params::new(64, 1, 1, Some(ARGON2_OUTPUT_LEN)).unwrap();
        Passwords::build(params, 4096, max_concurrent)
    }

    #[test]
    fn the_length_limit_counts_characters() {
        let params = Params::new(64, 1, 1, Some(ARGON2_OUTPUT_LEN)).unwrap();
        let passwords = Passwords::build(params, 4, 1);
        // Four characters, eight bytes: within the limit.
        assert!(passwords.check_length("éééé").is_ok());
        let error = passwords
            .check_length("ééééé")
            .expect_err("five characters");
        assert_eq!(error.code, "max_length");
        assert!(error.message.contains("it has 5"), "{}", error.message);
    }

    #[tokio::test]
    async fn every_computation_is_counted() {
        let passwords = cheap(1);
        let before = passwords.computations();
        let hash = passwords.hash("pw").await.unwrap();
        passwords.verify("pw", &hash).await.unwrap();
        passwords.verify_dummy("pw").await.unwrap();
        assert_eq!(passwords.computations() - before, 3);
    }

    // Generated with Django 5.2.19 (`make_password`, and the hashers'
    // `encode` with fewer iterations or bcrypt rounds to keep tests fast).
    const DJANGO_PBKDF2_DEFAULT: &str =
        "pbkdf2_sha256$1000000$WwhedzhAmlors8L4dxkHQJ$5gQ4TtNF4msSsaLBhscmXaCokpnJq3I2kOvFp66GSWg=";
    const DJANGO_PBKDF2: &str =
        "pbkdf2_sha256$1000$VWUTGxLBiLOJTwjzRlZmTH$4qoefr8GyvDMUfAMMNxRKBle6GFtVRmOvlArkOFqadY=";
    const DJANGO_PBKDF2_UNICODE: &str =
        "pbkdf2_sha256$1200$hSDP6xLdN2dt6YIjTDPxxW$yMPGgkSjvbniYnUvWwVS3CwuzDd+oXAWrkDM4AHTBuU=";
    const DJANGO_PBKDF2_SHA1: &str =
        "pbkdf2_sha1$1000$OKJ4RNWXEhfxgqoilYojlf$hs6SokN3ZbOBFXNlyoMiTaqQ6rg=";
    // Django's ScryptPasswordHasher with work_factor 2^10 (default 2^14).
    const DJANGO_SCRYPT: &str = "scrypt$1024$saltsaltsalt$8$5$GKUdske4QQ8JLAM7OwomVgwwUAXWzAuJTwPFQCSA3vNLQRo9Awuxd3q5GvDwg50X3fqYfQ5IEWBBqVPLKgTLwg==";
    const DJANGO_ARGON2: &str = "argon2$argon2id$v=19$m=102400,t=2,p=8$NDhmR3F3NmU5ZkQ1eHVYbnA0Vmdxbw$/cUhF6cgBj2zKvPi7AeDa/XB0QFH7iF/vAfCcvBm9qI";
    const DJANGO_BCRYPT_SHA256: &str =
        "bcrypt_sha256$$2b$04$JECRfsG7xzu/d7ARKRS7FOxK5d7BNQfQlnhMPVvwJlrwxPemKSvJq";
    const DJANGO_BCRYPT_SHA256_LONG: &str =
        "bcrypt_sha256$$2b$04$xMl1mfoWMWNKMCr4.yUDrOJBgQRQpemIiTlzZj9w2xKZfW3Qly8dG";
    const DJANGO_BCRYPT: &str =
        "bcrypt$$2b$04$flrFg7bld8CF.EatKz9iceNUOQZojtyOOT4J7X5FCsX4zQWIsjcYy";
    const DJANGO_UNUSABLE: &str = "!OQ3h2mxAvsoBxNP9YkCjjq2is3EIluVV6IxgqrBA";

    const UPGRADE: Verified = Verified::Ok {
        needs_upgrade: true,
    };
    const CURRENT: Verified = Verified::Ok {
        needs_upgrade: false,
    };

    #[tokio::test]
    async fn production_parameters() {
        let passwords = Passwords::new(&AccountConfig::default());
        let hash = passwords.hash("correct horse").await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert_eq!(
            passwords.verify("correct horse", &hash).await.unwrap(),
            CURRENT
        );
        assert_eq!(
            passwords.verify("correct horsf", &hash).await.unwrap(),
            Verified::Mismatch
        );
        passwords.verify_dummy("anything").await.unwrap();
        assert!(passwords.available_permits() >= 1);
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let passwords = cheap(2);
        let a = passwords.hash("s3cret pässword").await.unwrap();
        let b = passwords.hash("s3cret pässword").await.unwrap();
        assert_ne!(a, b, "salts differ");
        assert!(!a.contains("s3cret"));
        assert_eq!(
            passwords.verify("s3cret pässword", &a).await.unwrap(),
            CURRENT
        );
        assert_eq!(
            passwords.verify("s3cret pässword", &b).await.unwrap(),
            CURRENT
        );
        for wrong in ["s3cret password", "", "S3cret pässword", "s3cret pässword "] {
            assert_eq!(
                passwords.verify(wrong, &a).await.unwrap(),
                Verified::Mismatch,
                "{wrong:?}"
            );
        }
        let empty = passwords.hash("").await.unwrap();
        assert_eq!(passwords.verify("", &empty).await.unwrap(), CURRENT);
    }

    #[tokio::test]
    async fn weaker_argon2_needs_upgrade() {
        let weak = cheap(1).hash("pw").await.unwrap();
        let strong = Passwords::new(&AccountConfig::default());
        assert_eq!(strong.verify("pw", &weak).await.unwrap(), UPGRADE);
        assert_eq!(
            strong.verify("px", &weak).await.unwrap(),
            Verified::Mismatch
        );
        // A stronger hash than ours is kept.
        let stronger = Passwords::build(
            Params::new(ARGON2_MEMORY_KIB, 3, 1, Some(32)).unwrap(),
            4096,
            1,
        )
        .hash("pw")
        .await
        .unwrap();
        assert_eq!(strong.verify("pw", &stronger).await.unwrap(), CURRENT);
        // Argon2i is upgraded.
        let salt = SaltString::encode_b64(&[7; 16]).unwrap();
        let argon2i = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(ARGON2_MEMORY_KIB, 3, 1, Some(32)).unwrap(),
        )
        .hash_password(b"pw", &salt)
        .unwrap()
        .to_string();
        assert_eq!(strong.verify("pw", &argon2i).await.unwrap(), UPGRADE);
    }

    #[tokio::test]
    async fn django_pbkdf2() {
        let passwords = cheap(1);
        let cases = [
            (DJANGO_PBKDF2, "correct horse battery staple"),
            (DJANGO_PBKDF2_UNICODE, "pässwörd ✓"),
            (DJANGO_PBKDF2_SHA1, "secret"),
            (DJANGO_SCRYPT, "secret"),
        ];
        for (stored, password) in cases {
            assert_eq!(
                passwords.verify(password, stored).await.unwrap(),
                UPGRADE,
                "{stored}"
            );
            assert_eq!(
                passwords.verify("wrong", stored).await.unwrap(),
                Verified::Mismatch,
                "{stored}"
            );
        }
        // Tampered: other salt, other iteration count, cut hash.
        let tampered = DJANGO_PBKDF2.replace("$1000$", "$1001$");
        let cut = &DJANGO_PBKDF2[..DJANGO_PBKDF2.len() - 4];
        let salted = DJANGO_PBKDF2.replace("VWUT", "VWUU");
        for stored in [
            tampered.as_str(),
            cut,
            salted.as_str(),
            "pbkdf2_sha256$0$a$b",
            "pbkdf2_sha256$x",
        ] {
            assert_eq!(
                passwords
                    .verify("correct horse battery staple", stored)
                    .await
                    .unwrap(),
                Verified::Mismatch,
                "{stored}"
            );
        }
    }

    /// Django's default today: 1,000,000 iterations (slow in debug builds).
    #[tokio::test]
    async fn django_pbkdf2_default_iterations() {
        let passwords = cheap(1);
        assert_eq!(
            passwords
                .verify("secret", DJANGO_PBKDF2_DEFAULT)
                .await
                .unwrap(),
            UPGRADE
        );
    }

    #[tokio::test]
    async fn django_argon2_and_bcrypt() {
        let passwords = Passwords::new(&AccountConfig::default());
        assert_eq!(
            passwords.verify("secret", DJANGO_ARGON2).await.unwrap(),
            UPGRADE
        );
        assert_eq!(
            passwords.verify("Secret", DJANGO_ARGON2).await.unwrap(),
            Verified::Mismatch
        );
        assert_eq!(
            passwords
                .verify("secret", DJANGO_BCRYPT_SHA256)
                .await
                .unwrap(),
            UPGRADE
        );
        assert_eq!(
            passwords
                .verify("secreT", DJANGO_BCRYPT_SHA256)
                .await
                .unwrap(),
            Verified::Mismatch
        );
        // bcrypt_sha256 tells apart passwords that differ after 72 bytes.
        let long = "x".repeat(100);
        assert_eq!(
            passwords
                .verify(&long, DJANGO_BCRYPT_SHA256_LONG)
                .await
                .unwrap(),
            UPGRADE
        );
        assert_eq!(
            passwords
                .verify(&"x".repeat(99), DJANGO_BCRYPT_SHA256_LONG)
                .await
                .unwrap(),
            Verified::Mismatch
        );
        assert_eq!(
            passwords.verify("secret", DJANGO_BCRYPT).await.unwrap(),
            UPGRADE
        );
        assert_eq!(
            passwords.verify("secrets", DJANGO_BCRYPT).await.unwrap(),
            Verified::Mismatch
        );
    }

    #[tokio::test]
    async fn unusable_and_unknown_never_verify() {
        let passwords = cheap(1);
        let ours = passwords.hash("secret").await.unwrap();
        let unusable_ours = format!("!{ours}");
        for stored in [
            DJANGO_UNUSABLE,
            unusable_ours.as_str(),
            "",
            "!",
            "secret",
            "md5$salt$5ebe2294ecd0e0f08eab7690d2a6ee69",
            "scrypt$16384$salt$8$5$AAAA",
            "$argon2id$garbage",
            "argon2$argon2id$v=19$m=1,t=1,p=1$$",
            "bcrypt_sha256$$2b$nonsense",
        ] {
            assert_eq!(
                passwords.verify("secret", stored).await.unwrap(),
                Verified::Mismatch,
                "{stored:?}"
            );
        }
    }

    #[tokio::test]
    async fn too_long_passwords_are_refused_before_hashing() {
        let config = AccountConfig {
            password_max_length: 16,
            ..AccountConfig::default()
        };
        let passwords = Passwords::with_pool_size(&config, 1);
        passwords.probe.linger_ms.store(0, Ordering::SeqCst);
        let long = "x".repeat(17);
        match passwords.hash(&long).await {
            Err(Error::Invalid(errors)) => {
                assert_eq!(errors.len(), 1);
                assert_eq!(errors[0].code, "max_length");
                assert_eq!(errors[0].param, None);
                assert_eq!(
                    errors[0].message,
                    "Ensure this value has at most 16 characters (it has 17)."
                );
            }
            other => panic!("{other:?}"),
        }
        // Characters are counted, not bytes.
        assert!(passwords.check_length(&"é".repeat(16)).is_ok());
        assert!(passwords.check_length(&"é".repeat(17)).is_err());
        assert!(passwords.check_length(&"x".repeat(16)).is_ok());
        let hash = cheap(1).hash(&long).await.unwrap();
        assert_eq!(
            passwords.verify(&long, &hash).await.unwrap(),
            Verified::Mismatch
        );
        passwords.verify_dummy(&long).await.unwrap();
        // None of it reached the pool.
        assert_eq!(passwords.probe.peak.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_pool_bounds_concurrency() {
        for permits in [1, 2] {
            let passwords = cheap(permits);
            passwords.probe.linger_ms.store(40, Ordering::SeqCst);
            let tasks: Vec<_> = (0..6)
                .map(|i| {
                    let passwords = passwords.clone();
                    tokio::spawn(async move {
                        if i % 2 == 0 {
                            passwords.hash("pw").await.map(|_| ())
                        } else {
                            passwords.verify_dummy("pw").await
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap().unwrap();
            }
            assert_eq!(passwords.probe.peak.load(Ordering::SeqCst), permits);
            assert_eq!(passwords.probe.inside.load(Ordering::SeqCst), 0);
            assert_eq!(passwords.available_permits(), permits);
            // Six hashes, at most one working buffer per permit.
            assert!((1..=permits).contains(&passwords.buffers_allocated()));
        }
    }

    #[tokio::test]
    async fn hashes_made_in_reused_memory_are_standard_phc_strings() {
        let passwords = cheap(1);
        let first = passwords.hash("correct horse").await.unwrap();
        let second = passwords.hash("battery staple").await.unwrap();
        assert_eq!(passwords.buffers_allocated(), 1);
        // The argon2 crate's own verifier agrees with what the reused
        // buffer computed (a buffer left dirty by the first hash must not
        // change the second).
        for (hash, password) in [(&first, "correct horse"), (&second, "battery staple")] {
            let parsed = PasswordHash::new(hash).unwrap();
            assert!(Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok());
            assert!(Argon2::default()
                .verify_password(b"wrong", &parsed)
                .is_err());
        }
        let reference = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            passwords.params.clone(),
        )
        .hash_password(b"pw", &SaltString::encode_b64(b"0123456789abcdef").unwrap())
        .unwrap()
        .to_string();
        assert!(matches!(
            passwords.verify("pw", &reference).await.unwrap(),
            Verified::Ok {
                needs_upgrade: false
            }
        ));
        assert_eq!(
            passwords.verify("pW", &reference).await.unwrap(),
            Verified::Mismatch
        );
    }

    #[tokio::test]
    async fn idle_buffers_are_freed_and_allocated_again() {
        let passwords = cheap(1);
        passwords.hash("first password here").await.unwrap();
        assert_eq!(passwords.buffers_allocated(), 1);
        // Just used: kept.
        assert_eq!(passwords.release_idle_buffers(Duration::from_secs(60)), 0);
        assert_eq!(passwords.buffers_allocated(), 1);
        // Idle long enough (zero here): freed.
        assert_eq!(passwords.release_idle_buffers(Duration::ZERO), 1);
        assert_eq!(passwords.buffers_allocated(), 0);
        // The next hash allocates one again and still verifies.
        let hash = passwords.hash("second password here").await.unwrap();
        assert!(passwords
            .verify("second password here", &hash)
            .await
            .unwrap()
            .is_ok());
        assert_eq!(passwords.buffers_allocated(), 1);
    }

    #[tokio::test]
    async fn a_dropped_caller_keeps_its_permit_until_the_work_ends() {
        let passwords = cheap(1);
        passwords.probe.linger_ms.store(200, Ordering::SeqCst);
        let first = {
            let passwords = passwords.clone();
            tokio::spawn(async move { passwords.hash("pw").await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        first.abort();
        let _ = first.await;
        // The blocking work still holds the only permit.
        assert_eq!(passwords.available_permits(), 0);
        passwords.probe.linger_ms.store(0, Ordering::SeqCst);
        passwords.hash("pw").await.unwrap();
        assert_eq!(passwords.probe.peak.load(Ordering::SeqCst), 1);
        assert_eq!(passwords.available_permits(), 1);
    }
}
