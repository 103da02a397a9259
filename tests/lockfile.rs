//! Tidy: one version of each hash and MAC crate in `Cargo.lock` (issue 9).
//!
//! Two versions of `digest` mean two copies of every hash in the binary and two trait worlds
//! that do not interoperate (a `Hmac<Sha256>` of one line cannot take the other's `Sha256`).
//! This test fails when a dependency change brings a second version of one of these crates
//! back; the fix is to align our direct dependency with what the other crates need (see
//! CONTRIBUTING.md, "Dependencies"), not to widen the table below.

use std::collections::BTreeMap;
use std::path::Path;

/// Crate name → the versions `Cargo.lock` may hold, and why more than one is tolerated.
const ALLOWED: &[(&str, &[&str], &str)] = &[
    (
        "digest",
        &["0.11"],
        "the hash trait line of argon2, hmac, sha1 and sha2",
    ),
    (
        "hmac",
        &["0.13"],
        "vigil-core's Kraken API-Sign and the CSRF token",
    ),
    (
        "sha2",
        &["0.11"],
        "Kraken signing, API-token and asset digests",
    ),
    ("sha1", &["0.11"], "supervisord's {SHA} passwords"),
    (
        "base64",
        &["0.22", "0.23"],
        "0.22 is pinned by metrics-exporter-prometheus 0.18 and jsonwebtoken 11 (their latest \
         releases); we use 0.23 with axum, hyper-util and reqwest",
    ),
];

/// `(name, version)` of every `[[package]]` in a Cargo.lock.
fn packages(lock: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut name: Option<String> = None;
    for line in lock.lines() {
        let line = line.trim();
        if line == "[[package]]" {
            name = None;
        } else if let Some(v) = line.strip_prefix("name = ") {
            name = Some(v.trim_matches('"').to_string());
        } else if let Some(v) = line.strip_prefix("version = ")
            && let Some(n) = name.take()
        {
            out.push((n, v.trim_matches('"').to_string()));
        }
    }
    out
}

/// The offences: a listed crate at a version outside its line(s), or at two versions of one line.
fn offences(pkgs: &[(String, String)]) -> Vec<String> {
    let mut seen: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (n, v) in pkgs {
        seen.entry(n).or_default().push(v);
    }
    let mut out = Vec::new();
    for (name, lines, why) in ALLOWED {
        let versions = seen.get(name).cloned().unwrap_or_default();
        let outside: Vec<&str> = versions
            .iter()
            .copied()
            .filter(|v| !lines.iter().any(|l| v.starts_with(&format!("{l}."))))
            .collect();
        if !outside.is_empty() || versions.len() > lines.len() {
            out.push(format!(
                "{name}: Cargo.lock holds {versions:?}, allowed one of each of {lines:?} ({why})"
            ));
        }
    }
    out
}

#[test]
fn one_version_of_each_hash_and_mac_crate() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock");
    let lock = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let pkgs = packages(&lock);
    assert!(
        pkgs.iter().any(|(n, _)| n == "vigil-core"),
        "{} does not look like our lock file",
        path.display()
    );
    for (name, _, _) in ALLOWED {
        assert!(
            pkgs.iter().any(|(n, _)| n == name),
            "{name} is no longer in Cargo.lock: drop its row from ALLOWED"
        );
    }
    let bad = offences(&pkgs);
    assert!(
        bad.is_empty(),
        "duplicate crypto crates:\n{}",
        bad.join("\n")
    );
}

/// The check itself can fail: the lock of before issue 9 (hmac 0.12 + 0.13, …) is refused.
#[test]
fn a_second_version_is_refused() {
    let lock = r#"
[[package]]
name = "hmac"
version = "0.12.1"

[[package]]
name = "hmac"
version = "0.13.0"

[[package]]
name = "digest"
version = "0.11.3"

[[package]]
name = "base64"
version = "0.23.1"

[[package]]
name = "base64"
version = "0.21.7"
"#;
    let bad = offences(&packages(lock));
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(
        bad[0].starts_with("hmac: Cargo.lock holds [\"0.12.1\", \"0.13.0\"]"),
        "{bad:?}"
    );
    assert!(bad[1].starts_with("base64: "), "{bad:?}");
}
