//! Argon2id password and machine-token hashes, as PHC strings
//! (`$argon2id$v=19$m=19456,t=2,p=1$SALT$HASH`), with argon2's default parameters (OWASP's
//! minimum: 19 MiB, 2 passes). Verification is CPU-bound: call it on a blocking thread.

use argon2::password_hash::phc::PasswordHash;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};

/// A valid hash with the default parameters, verified against when the user does not exist so
/// that unknown users and wrong passwords take the same time.
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$PVCswKykrX9jbKvuThChdA$+i9C+gtU7e8OSuYc4vKxSZnAa+Y5+XI9ply/x/46FA8";

/// Hash a password (or a machine token's secret) with a fresh random salt.
pub fn hash(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing failed: {e}"))
}

/// Whether `password` matches the PHC string `phc`; false for a malformed hash.
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// Why `phc` is not a usable argon2 PHC string (config validation).
pub fn check_phc(phc: &str) -> Result<(), String> {
    let h = PasswordHash::new(phc).map_err(|e| {
        format!("expected an argon2 PHC string such as \"$argon2id$v=19$m=19456,t=2,p=1$...\" (made by `vigil hash-password`): {e}")
    })?;
    let alg = h.algorithm.as_str();
    if !matches!(alg, "argon2id" | "argon2i" | "argon2d") {
        return Err(format!(
            "unsupported hash algorithm \"{alg}\": expected argon2id (made by `vigil hash-password`)"
        ));
    }
    if h.hash.is_none() {
        return Err("the PHC string has no hash part".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash("correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(check_phc(&h).is_ok());
        assert!(verify("correct horse", &h));
        assert!(!verify("wrong", &h));
        assert!(!verify("x", "not a hash"));
        assert!(check_phc(DUMMY_HASH).is_ok());
    }

    #[test]
    fn rejects_other_formats() {
        assert!(check_phc("plaintext").is_err());
        assert!(check_phc("$2b$12$abcdefghijklmnopqrstuu").is_err());
    }
}
