//! The validated `[auth]` table of vigil.toml: what the loader (`config::auth`) produces and
//! [`super::Auth`] runs on. No parsing here: the config layer reads the table.

use std::net::SocketAddr;
use std::time::Duration;

use super::{Role, Secret};

/// Default `token_ttl`: 30 minutes.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(30 * 60);
/// Default `login_attempts_per_minute` (per user and per address).
pub const DEFAULT_LOGIN_RATE: u32 = 10;
/// The shortest JWT secret accepted (HS256 wants at least the hash size).
pub const MIN_SECRET_BYTES: usize = 32;

/// The validated `[auth]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthConfig {
    pub jwt_secret: JwtSecretSource,
    /// Lifetime of a login's JWT (and its cookie). Default 30 minutes.
    pub token_ttl: Duration,
    pub users: Vec<UserEntry>,
    pub tokens: Vec<TokenEntry>,
    /// Role needed for `GET /metrics` on the main listener; `None` = public. Default viewer.
    pub metrics_role: Option<Role>,
    /// A second listener serving only `GET /metrics`, without authentication.
    pub metrics_listen: Option<SocketAddr>,
    /// Add `Secure` to the session cookies (set it when vigil is behind HTTPS).
    pub cookie_secure: bool,
    /// Login attempts per minute, per user name and per client address (burst = the same).
    pub login_attempts_per_minute: u32,
    /// Origins allowed by CORS (`https://ops.example.com`); empty = CORS off.
    pub cors_origins: Vec<String>,
}

/// Where the HS256 secret comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum JwtSecretSource {
    /// `jwt_secret = "…"`.
    Inline(Secret),
    /// `jwt_secret_env = "VAR"`, read at load.
    Env { var: String, value: Secret },
    /// Neither: a random secret per daemon start (tokens do not survive a restart).
    Generated,
}

/// `[[auth.users]]`: a person who logs in with a password.
#[derive(Debug, Clone, PartialEq)]
pub struct UserEntry {
    pub name: String,
    pub role: Role,
    /// argon2 PHC string (`vigil hash-password`).
    pub password_hash: String,
}

/// `[[auth.tokens]]`: a bot or script; it sends `Authorization: Bearer NAME.SECRET`.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenEntry {
    pub name: String,
    pub role: Role,
    /// argon2 PHC string of SECRET (`vigil hash-password --new-token NAME`).
    pub secret_hash: String,
}
