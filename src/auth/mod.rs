//! Authentication and authorization, without HTTP: roles, the `[auth]` config, password and
//! machine-token hashes (argon2), JWTs (HS256) and the login rate limiter. The HTTP side
//! (the access table, the middleware, login, cookies and CSRF) is `api::auth`.
//! Reference: `docs/security.md`.

pub mod cli;
pub mod config;
pub mod jwt;
pub mod limiter;
pub mod password;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use config::{AuthConfig, JwtSecretSource, TokenEntry, UserEntry};
pub use jwt::Claims;
pub use limiter::Limiter;

/// What a principal may do. `Admin > Operator > Viewer`; `Ingest` stands apart: it may only
/// post events (and read who it is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
    Ingest,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Operator, Role::Viewer, Role::Ingest];

    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
            Role::Ingest => "ingest",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == s)
    }

    /// Rank in the `viewer < operator < admin` order; `None` for `ingest`, which is outside it.
    fn rank(self) -> Option<u8> {
        match self {
            Role::Viewer => Some(1),
            Role::Operator => Some(2),
            Role::Admin => Some(3),
            Role::Ingest => None,
        }
    }

    /// Whether this role satisfies a route that needs at least `min` (`min` is one of the
    /// ordered roles; `ingest` never satisfies an ordered minimum).
    pub fn at_least(self, min: Role) -> bool {
        match (self.rank(), min.rank()) {
            (Some(a), Some(b)) => a >= b,
            _ => false,
        }
    }

    /// May post events: `ingest` tokens and admins.
    pub fn may_ingest(self) -> bool {
        matches!(self, Role::Ingest | Role::Admin)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A secret string that never shows in `Debug`/`Display` output (config dumps, logs).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The secret itself; call only where it is used, never to print it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// How a principal proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A `[[auth.users]]` entry, by a JWT from `POST /api/auth/login`.
    User,
    /// A `[[auth.tokens]]` entry, by `NAME.SECRET`.
    Token,
}

/// An authenticated principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    /// The role in the *current* config (a JWT's role claim is informative only).
    pub role: Role,
    pub kind: Kind,
    /// The JWT's id (binds the CSRF token to the session); `None` for machine tokens.
    pub jti: Option<String>,
    /// Unix seconds; `None` for machine tokens (they do not expire).
    pub expires_at: Option<u64>,
}

/// Why a credential was refused (all map to 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing credentials: send Authorization: Bearer <token>")]
    Missing,
    #[error("the token has expired; log in again")]
    Expired,
    #[error("invalid token")]
    Invalid,
    #[error("unknown user \"{0}\" (no longer configured)")]
    UnknownUser(String),
    #[error("too many failed attempts; retry in {} s", .0.as_secs().max(1))]
    RateLimited(Duration),
}

/// How long a verified machine token is remembered (argon2 runs once per token per period).
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(300);
const TOKEN_CACHE_MAX: usize = 4096;

/// The live authentication state: the config in force (replaced on SIGHUP), the keys derived
/// from it, the login rate limiter and the cache of verified machine tokens.
pub struct Auth {
    active: RwLock<Arc<Active>>,
    limiter: Mutex<Limiter>,
    /// sha256(presented token) → (token name, the secret_hash it verified against, when).
    token_cache: Mutex<HashMap<[u8; 32], (String, String, Instant)>>,
}

/// One config generation with its keys.
pub struct Active {
    pub config: AuthConfig,
    keys: jwt::Keys,
    /// The JWT secret actually in use (the configured one, or one generated at start).
    generated: Option<Secret>,
}

impl Active {
    fn new(config: AuthConfig, previous: Option<&Active>) -> Active {
        let (secret, generated) = match &config.jwt_secret {
            JwtSecretSource::Inline(s) | JwtSecretSource::Env { value: s, .. } => {
                (s.expose().as_bytes().to_vec(), None)
            }
            JwtSecretSource::Generated => {
                // Keep the generated secret across reloads so tokens survive a SIGHUP.
                let s = previous
                    .and_then(|p| p.generated.clone())
                    .unwrap_or_else(|| Secret::new(random_hex(32)));
                (s.expose().as_bytes().to_vec(), Some(s))
            }
        };
        Active {
            config,
            keys: jwt::Keys::new(&secret),
            generated,
        }
    }

    pub fn user(&self, name: &str) -> Option<&UserEntry> {
        self.config.users.iter().find(|u| u.name == name)
    }

    pub fn token(&self, name: &str) -> Option<&TokenEntry> {
        self.config.tokens.iter().find(|t| t.name == name)
    }
}

impl Auth {
    pub fn new(config: AuthConfig) -> Auth {
        if matches!(config.jwt_secret, JwtSecretSource::Generated) {
            tracing::warn!(
                "[auth] has no jwt_secret or jwt_secret_env: using a random secret; issued tokens \
                 stop working when vigil restarts"
            );
        }
        let rate = config.login_attempts_per_minute;
        Auth {
            active: RwLock::new(Arc::new(Active::new(config, None))),
            limiter: Mutex::new(Limiter::per_minute(rate)),
            token_cache: Mutex::new(HashMap::new()),
        }
    }

    /// The config generation in force.
    pub fn active(&self) -> Arc<Active> {
        match self.active.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Apply a reloaded `[auth]` (users, tokens, TTL, secret, limits). Tokens signed with a
    /// replaced secret stop working; removed users and tokens are refused at once.
    pub fn reload(&self, config: AuthConfig) {
        let prev = self.active();
        let next = Arc::new(Active::new(config, Some(&prev)));
        if let Ok(mut l) = self.limiter.lock() {
            l.set_rate(next.config.login_attempts_per_minute);
        }
        if let Ok(mut c) = self.token_cache.lock() {
            c.clear();
        }
        match self.active.write() {
            Ok(mut g) => *g = next,
            Err(p) => *p.into_inner() = next,
        }
    }

    fn limiter(&self) -> std::sync::MutexGuard<'_, Limiter> {
        match self.limiter.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Take one attempt from `key`'s bucket; `Err(retry_after)` when it is empty.
    pub fn take(&self, key: &str) -> Result<(), Duration> {
        self.limiter().take(key, Instant::now())
    }

    /// Whether `key`'s bucket has an attempt left, without taking it.
    pub fn peek(&self, key: &str) -> Result<(), Duration> {
        self.limiter().peek(key, Instant::now())
    }

    /// Check a user name and password (argon2, on a blocking thread). Unknown users cost the
    /// same as wrong passwords.
    pub async fn check_password(&self, username: &str, password: &str) -> Option<Principal> {
        let active = self.active();
        let user = active.user(username).cloned();
        let hash = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| password::DUMMY_HASH.to_string());
        let pw = password.to_string();
        let ok = tokio::task::spawn_blocking(move || password::verify(&pw, &hash))
            .await
            .unwrap_or(false);
        match user {
            Some(u) if ok => Some(Principal {
                name: u.name,
                role: u.role,
                kind: Kind::User,
                jti: None,
                expires_at: None,
            }),
            _ => None,
        }
    }

    /// Issue a JWT for a user who just logged in: (token, claims).
    pub fn issue(&self, name: &str, role: Role) -> Result<(String, Claims), AuthError> {
        let active = self.active();
        let now = unix_now();
        let claims = Claims::new(name, role, now, active.config.token_ttl);
        let token = active
            .keys
            .encode(&claims)
            .map_err(|_| AuthError::Invalid)?;
        Ok((token, claims))
    }

    /// The CSRF token bound to a session (JWT id): HMAC of the id under the JWT secret.
    pub fn csrf_token(&self, jti: &str) -> String {
        self.active().keys.csrf(jti)
    }

    pub fn csrf_ok(&self, jti: &str, presented: &str) -> bool {
        constant_time_eq(self.csrf_token(jti).as_bytes(), presented.as_bytes())
    }

    /// Authenticate a bearer credential: a JWT (`xxx.yyy.zzz`) or a machine token
    /// (`NAME.SECRET`). `addr` keys the failure rate limit for machine tokens.
    pub async fn authenticate(&self, credential: &str, addr: &str) -> Result<Principal, AuthError> {
        let dots = credential.bytes().filter(|b| *b == b'.').count();
        match dots {
            2 => self.authenticate_jwt(credential),
            1 => self.authenticate_machine(credential, addr).await,
            _ => Err(AuthError::Invalid),
        }
    }

    fn authenticate_jwt(&self, token: &str) -> Result<Principal, AuthError> {
        let active = self.active();
        let claims = active.keys.decode(token)?;
        let user = active
            .user(&claims.sub)
            .ok_or_else(|| AuthError::UnknownUser(claims.sub.clone()))?;
        Ok(Principal {
            name: user.name.clone(),
            role: user.role,
            kind: Kind::User,
            jti: Some(claims.jti),
            expires_at: Some(claims.exp),
        })
    }

    async fn authenticate_machine(&self, token: &str, addr: &str) -> Result<Principal, AuthError> {
        let Some((name, secret)) = token.split_once('.') else {
            return Err(AuthError::Invalid);
        };
        let active = self.active();
        let Some(entry) = active.token(name).cloned() else {
            return Err(AuthError::Invalid);
        };
        let key = sha256(token.as_bytes());
        let now = Instant::now();
        let cached = self.token_cache.lock().ok().and_then(|c| {
            c.get(&key).and_then(|(n, h, at)| {
                (n == name && *h == entry.secret_hash && now.duration_since(*at) < TOKEN_CACHE_TTL)
                    .then_some(())
            })
        });
        if cached.is_none() {
            // Failed secrets of one token from one address are limited like logins (argon2 is
            // costly); cached tokens and other tokens are not affected.
            let limit_key = format!("token:{name}@{addr}");
            if let Err(wait) = self.peek(&limit_key) {
                return Err(AuthError::RateLimited(wait));
            }
            let hash = entry.secret_hash.clone();
            let s = secret.to_string();
            let ok = tokio::task::spawn_blocking(move || password::verify(&s, &hash))
                .await
                .unwrap_or(false);
            if !ok {
                let _ = self.take(&limit_key);
                return Err(AuthError::Invalid);
            }
            if let Ok(mut c) = self.token_cache.lock() {
                if c.len() >= TOKEN_CACHE_MAX {
                    c.retain(|_, (_, _, at)| now.duration_since(*at) < TOKEN_CACHE_TTL);
                    if c.len() >= TOKEN_CACHE_MAX {
                        c.clear();
                    }
                }
                c.insert(key, (name.to_string(), entry.secret_hash.clone(), now));
            }
        }
        Ok(Principal {
            name: entry.name,
            role: entry.role,
            kind: Kind::Token,
            jti: None,
            expires_at: None,
        })
    }
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    use rand::RngCore;
    let mut b = vec![0u8; n];
    rand::rng().fill_bytes(&mut b);
    hex(&b)
}

pub fn hex(b: &[u8]) -> String {
    use std::fmt::Write;
    b.iter()
        .fold(String::with_capacity(b.len() * 2), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}

fn sha256(b: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(b).into()
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_order() {
        assert!(Role::Admin.at_least(Role::Operator));
        assert!(Role::Operator.at_least(Role::Operator));
        assert!(!Role::Viewer.at_least(Role::Operator));
        assert!(!Role::Ingest.at_least(Role::Viewer));
        assert!(Role::Admin.may_ingest() && Role::Ingest.may_ingest());
        assert!(!Role::Operator.may_ingest());
        for r in Role::ALL {
            assert_eq!(Role::parse(r.name()), Some(r));
        }
    }

    #[test]
    fn secret_is_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "Secret([redacted]) [redacted]");
    }

    #[test]
    fn ct_eq() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
