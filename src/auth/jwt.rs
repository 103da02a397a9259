//! JWTs for logged-in users: HS256, issuer `vigil`, `sub` = user name, `role`, `iat`, `exp`,
//! and a random `jti` that the CSRF token is bound to.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{AuthError, Role, hex, random_hex};

pub const ISSUER: &str = "vigil";
/// Clock skew tolerated on `exp`.
const LEEWAY_SECS: u64 = 5;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub role: Role,
    pub iat: u64,
    pub exp: u64,
    pub jti: String,
}

impl Claims {
    pub fn new(name: &str, role: Role, now: u64, ttl: Duration) -> Claims {
        Claims {
            iss: ISSUER.to_string(),
            sub: name.to_string(),
            role,
            iat: now,
            exp: now.saturating_add(ttl.as_secs()),
            jti: random_hex(16),
        }
    }
}

/// Keys derived from the JWT secret.
pub struct Keys {
    enc: EncodingKey,
    dec: DecodingKey,
    /// `None` cannot happen (HMAC takes keys of any length); then CSRF tokens never validate.
    csrf: Option<Hmac<Sha256>>,
}

impl Keys {
    pub fn new(secret: &[u8]) -> Keys {
        let csrf = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).ok();
        Keys {
            enc: EncodingKey::from_secret(secret),
            dec: DecodingKey::from_secret(secret),
            csrf,
        }
    }

    pub fn encode(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.enc)
    }

    pub fn decode(&self, token: &str) -> Result<Claims, AuthError> {
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = LEEWAY_SECS;
        v.set_issuer(&[ISSUER]);
        v.set_required_spec_claims(&["exp", "iss", "sub"]);
        match jsonwebtoken::decode::<Claims>(token, &self.dec, &v) {
            Ok(d) => Ok(d.claims),
            Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => Err(AuthError::Expired),
            Err(_) => Err(AuthError::Invalid),
        }
    }

    /// 128 bits of HMAC-SHA256(secret, "csrf:" + jti), hex.
    pub fn csrf(&self, jti: &str) -> String {
        let Some(mut m) = self.csrf.clone() else {
            return random_hex(16);
        };
        m.update(b"csrf:");
        m.update(jti.as_bytes());
        let out = m.finalize().into_bytes();
        hex(out.get(..16).unwrap_or(&out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_failures() {
        let k = Keys::new(b"0123456789abcdef0123456789abcdef");
        let now = crate::auth::unix_now();
        let c = Claims::new("alice", Role::Operator, now, Duration::from_secs(60));
        let t = k.encode(&c).expect("encode");
        assert_eq!(k.decode(&t), Ok(c.clone()));

        let other = Keys::new(b"another secret another secret!!!");
        assert_eq!(other.decode(&t), Err(AuthError::Invalid));

        let old = Claims::new("alice", Role::Operator, now - 3600, Duration::from_secs(60));
        assert_eq!(
            k.decode(&k.encode(&old).expect("encode")),
            Err(AuthError::Expired)
        );

        assert_eq!(k.decode("a.b.c"), Err(AuthError::Invalid));
        assert_eq!(k.csrf("x"), k.csrf("x"));
        assert_ne!(k.csrf("x"), k.csrf("y"));
        assert_eq!(k.csrf("x").len(), 32);
    }

    #[test]
    fn none_algorithm_is_refused() {
        let k = Keys::new(b"0123456789abcdef0123456789abcdef");
        // {"alg":"none","typ":"JWT"} . {"sub":"alice","role":"admin","iss":"vigil","exp":4000000000} .
        let t = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSIsInJvbGUiOiJhZG1pbiIsImlzcyI6InZpZ2lsIiwiZXhwIjo0MDAwMDAwMDAwfQ.";
        assert!(k.decode(t).is_err());
    }
}
