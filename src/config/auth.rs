//! `[auth]` in vigil.toml (a table the main loader reserves for this module): users, machine
//! tokens, the JWT secret and TTL, metrics access and CORS, read into
//! [`crate::auth::AuthConfig`]. Every problem is collected and located as
//! `FILE:LINE:COL: key: message`, like the rest of the config. Reference: `docs/config.md`
//! and `docs/security.md`.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::load::Ctx;
use crate::auth::config::{
    AuthConfig, DEFAULT_LOGIN_RATE, DEFAULT_TOKEN_TTL, JwtSecretSource, MIN_SECRET_BYTES,
    TokenEntry, UserEntry,
};
use crate::auth::{Role, Secret, password};

const AUTH_KEYS: &[&str] = &[
    "jwt_secret",
    "jwt_secret_env",
    "token_ttl",
    "cookie_secure",
    "login_attempts_per_minute",
    "metrics_role",
    "metrics_listen",
    "cors_origins",
    "users",
    "tokens",
];
const USER_KEYS: &[&str] = &["name", "role", "password_hash"];
const TOKEN_KEYS: &[&str] = &["name", "role", "secret_hash"];

/// Why a user or token name is unusable.
fn name_problem(name: &str, token: bool) -> Option<String> {
    let ok_char = |c: char| {
        c.is_ascii_alphanumeric() || c == '_' || c == '-' || (!token && (c == '.' || c == '@'))
    };
    if name.is_empty() {
        Some("is empty".into())
    } else if name.chars().count() > 64 {
        Some("is longer than 64 characters".into())
    } else if let Some(c) = name.chars().find(|c| !ok_char(*c)) {
        let allowed = if token {
            "letters, digits, '_' and '-'"
        } else {
            "letters, digits, '_', '-', '.' and '@'"
        };
        Some(format!("contains {c:?} (allowed: {allowed})"))
    } else {
        None
    }
}

/// `1800`, `"30m"`, `"1h"`, `"90s"`, `"1d"`.
fn parse_duration(v: &DeValue<'_>) -> Option<Duration> {
    match v {
        DeValue::Integer(i) => u64::from_str_radix(i.as_str(), i.radix())
            .ok()
            .map(Duration::from_secs),
        DeValue::String(s) => {
            let s = s.trim();
            let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let (num, unit) = s.split_at(split);
            let n: u64 = num.parse().ok()?;
            let mult = match unit.trim() {
                "" | "s" => 1,
                "m" => 60,
                "h" => 3600,
                "d" => 86_400,
                _ => return None,
            };
            n.checked_mul(mult).map(Duration::from_secs)
        }
        _ => None,
    }
}

/// Whether `s` is an origin: `scheme://host[:port]`, no path.
fn origin_ok(s: &str) -> bool {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    match rest {
        Some(r) => {
            !r.is_empty()
                && !r.contains('/')
                && r.chars().all(|c| c.is_ascii_graphic())
                && axum::http::HeaderValue::from_str(s).is_ok()
        }
        None => false,
    }
}

/// Parse `[auth]` (`v`, the value of the top-level `auth` key, if present); problems go to
/// `cx`, located like every other section's. `env` is the environment `jwt_secret_env` is
/// read from. None without an `[auth]` table.
pub(super) fn parse(
    cx: &mut Ctx,
    v: Option<&Spanned<DeValue<'_>>>,
    env: &BTreeMap<String, String>,
) -> Option<AuthConfig> {
    let v = v?;
    let t = cx.table_at("auth", v)?;
    let header = v.span().start;
    cx.unknown_in(t, "auth", AUTH_KEYS);

    // The secret.
    let inline = cx.str_in(t, "auth", "jwt_secret");
    let from_env = cx.str_in(t, "auth", "jwt_secret_env");
    let jwt_secret = match (inline, from_env) {
        (Some(_), Some((_, span))) => {
            cx.at(
                span.start,
                "auth.jwt_secret_env",
                "set either jwt_secret or jwt_secret_env, not both",
            );
            JwtSecretSource::Generated
        }
        (Some((s, span)), None) => {
            if s.len() < MIN_SECRET_BYTES {
                cx.at(
                    span.start,
                    "auth.jwt_secret",
                    format!(
                        "too short: at least {MIN_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)"
                    ),
                );
            }
            JwtSecretSource::Inline(Secret::new(s))
        }
        (None, Some((var, span))) => match env.get(var) {
            None => {
                cx.at(
                    span.start,
                    "auth.jwt_secret_env",
                    format!("environment variable {var} is not set"),
                );
                JwtSecretSource::Generated
            }
            Some(val) if val.len() < MIN_SECRET_BYTES => {
                cx.at(
                    span.start,
                    "auth.jwt_secret_env",
                    format!(
                        "the secret in {var} is too short: at least {MIN_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)"
                    ),
                );
                JwtSecretSource::Generated
            }
            Some(val) => JwtSecretSource::Env {
                var: var.to_string(),
                value: Secret::new(val.clone()),
            },
        },
        (None, None) => JwtSecretSource::Generated,
    };

    let token_ttl = match t.get("token_ttl") {
        None => DEFAULT_TOKEN_TTL,
        Some(v) => match parse_duration(v.get_ref()) {
            Some(d) if d >= Duration::from_secs(10) && d <= Duration::from_secs(7 * 86_400) => d,
            _ => {
                cx.expected(
                    "auth.token_ttl",
                    v,
                    "a duration between 10 s and 7 days: seconds, or a string such as \"30m\", \"8h\"",
                );
                DEFAULT_TOKEN_TTL
            }
        },
    };

    let cookie_secure = match t.get("cookie_secure") {
        None => false,
        Some(v) => match v.get_ref() {
            DeValue::Boolean(b) => *b,
            _ => {
                cx.expected("auth.cookie_secure", v, "a boolean (true or false)");
                false
            }
        },
    };

    let login_attempts_per_minute = match t.get("login_attempts_per_minute") {
        None => DEFAULT_LOGIN_RATE,
        Some(v) => match v.get_ref() {
            DeValue::Integer(i) => match u32::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) if (1..=10_000).contains(&n) => n,
                _ => {
                    cx.expected(
                        "auth.login_attempts_per_minute",
                        v,
                        "an integer from 1 to 10000",
                    );
                    DEFAULT_LOGIN_RATE
                }
            },
            _ => {
                cx.expected(
                    "auth.login_attempts_per_minute",
                    v,
                    "an integer from 1 to 10000",
                );
                DEFAULT_LOGIN_RATE
            }
        },
    };

    let metrics_role = match cx.str_in(t, "auth", "metrics_role") {
        None => Some(Role::Viewer),
        Some(("public", _)) => None,
        Some((s, span)) => match Role::parse(s) {
            Some(r) if r != Role::Ingest => Some(r),
            _ => {
                cx.at(
                    span.start,
                    "auth.metrics_role",
                    format!(
                        "expected one of \"public\", \"viewer\", \"operator\", \"admin\", found string {s:?}"
                    ),
                );
                Some(Role::Viewer)
            }
        },
    };

    let metrics_listen = match cx.str_in(t, "auth", "metrics_listen") {
        None => None,
        Some((s, span)) => match s.trim().parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                cx.at(
                    span.start,
                    "auth.metrics_listen",
                    format!(
                        "expected a socket address such as \"127.0.0.1:9108\", found string {s:?}"
                    ),
                );
                None
            }
        },
    };

    let mut cors_origins = Vec::new();
    if let Some(v) = t.get("cors_origins") {
        match v.get_ref() {
            DeValue::Array(a) => {
                for item in a.iter() {
                    match item.get_ref().as_str() {
                        Some(s) if origin_ok(s) => cors_origins.push(s.to_string()),
                        _ => cx.expected(
                            "auth.cors_origins",
                            item,
                            "an origin such as \"https://ops.example.com\" (scheme, host, optional port; no path)",
                        ),
                    }
                }
            }
            _ => cx.expected("auth.cors_origins", v, "an array of origins"),
        }
    }

    // Users and tokens share one namespace: the name is the actor recorded on changes.
    let mut seen: HashMap<String, &'static str> = HashMap::new();
    let mut users = Vec::new();
    for (i, item, table) in entries(cx, t, "users") {
        let path = format!("auth.users[{i}]");
        cx.unknown_in(table, &path, USER_KEYS);
        let name = entry_name(
            cx,
            table,
            &path,
            item.span().start,
            false,
            &mut seen,
            "user",
        );
        let role = role_of(cx, table, &path, item.span().start, false);
        let hash = phc(cx, table, &path, "password_hash", item.span().start);
        if let (Some(name), Some(role), Some(password_hash)) = (name, role, hash) {
            users.push(UserEntry {
                name,
                role,
                password_hash,
            });
        }
    }
    let mut tokens = Vec::new();
    for (i, item, table) in entries(cx, t, "tokens") {
        let path = format!("auth.tokens[{i}]");
        cx.unknown_in(table, &path, TOKEN_KEYS);
        let name = entry_name(
            cx,
            table,
            &path,
            item.span().start,
            true,
            &mut seen,
            "token",
        );
        let role = role_of(cx, table, &path, item.span().start, true);
        let hash = phc(cx, table, &path, "secret_hash", item.span().start);
        if let (Some(name), Some(role), Some(secret_hash)) = (name, role, hash) {
            tokens.push(TokenEntry {
                name,
                role,
                secret_hash,
            });
        }
    }
    if t.get("users").is_none() && t.get("tokens").is_none() {
        cx.at(
            header,
            "auth",
            "no [[auth.users]] and no [[auth.tokens]]: nobody could authenticate (make a hash with `vigil hash-password`)",
        );
    }

    let config = AuthConfig {
        jwt_secret,
        token_ttl,
        users,
        tokens,
        metrics_role,
        metrics_listen,
        cookie_secure,
        login_attempts_per_minute,
        cors_origins,
    };
    Some(config)
}

/// The tables of `[[auth.KEY]]`, with their index.
fn entries<'t, 'i>(
    cx: &mut Ctx,
    t: &'t DeTable<'i>,
    key: &str,
) -> Vec<(usize, &'t Spanned<DeValue<'i>>, &'t DeTable<'i>)> {
    let Some(v) = t.get(key) else {
        return Vec::new();
    };
    let DeValue::Array(a) = v.get_ref() else {
        cx.expected(
            &format!("auth.{key}"),
            v,
            &format!("an array of tables ([[auth.{key}]])"),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in a.iter().enumerate() {
        match item.get_ref() {
            DeValue::Table(tt) => out.push((i, item, tt)),
            _ => cx.expected(
                &format!("auth.{key}[{i}]"),
                item,
                &format!("a table ([[auth.{key}]])"),
            ),
        }
    }
    out
}

fn entry_name(
    cx: &mut Ctx,
    table: &DeTable<'_>,
    path: &str,
    at: usize,
    token: bool,
    seen: &mut HashMap<String, &'static str>,
    what: &'static str,
) -> Option<String> {
    let Some((name, span)) = cx.str_in(table, path, "name") else {
        if table.get("name").is_none() {
            cx.at(at, format!("{path}.name"), "required key is missing");
        }
        return None;
    };
    if let Some(p) = name_problem(name, token) {
        cx.at(
            span.start,
            format!("{path}.name"),
            format!("invalid {what} name: {p}"),
        );
        return None;
    }
    if let Some(other) = seen.get(name) {
        cx.at(
            span.start,
            format!("{path}.name"),
            format!("the name \"{name}\" is already used by a {other} (user and token names share one namespace)"),
        );
        return None;
    }
    seen.insert(name.to_string(), what);
    Some(name.to_string())
}

/// The `role` of a user (`token` false: "admin", "operator" or "viewer") or a machine token
/// (also "ingest"); `at` is the entry's header, where a missing role is reported.
fn role_of(cx: &mut Ctx, table: &DeTable<'_>, path: &str, at: usize, token: bool) -> Option<Role> {
    let key = format!("{path}.role");
    let Some((s, span)) = cx.str_in(table, path, "role") else {
        if table.get("role").is_none() {
            cx.at(at, key, "required key is missing");
        }
        return None;
    };
    match Role::parse(s) {
        Some(Role::Ingest) if !token => {
            cx.at(
                span.start,
                key,
                "\"ingest\" is for machine tokens ([[auth.tokens]]); users are \"admin\", \"operator\" or \"viewer\"",
            );
            None
        }
        Some(r) => Some(r),
        None => {
            let known = if token {
                "\"admin\", \"operator\", \"viewer\", \"ingest\""
            } else {
                "\"admin\", \"operator\", \"viewer\""
            };
            cx.at(
                span.start,
                key,
                format!("expected one of {known}, found string {s:?}"),
            );
            None
        }
    }
}

fn phc(cx: &mut Ctx, table: &DeTable<'_>, path: &str, key: &str, at: usize) -> Option<String> {
    let Some((s, span)) = cx.str_in(table, path, key) else {
        if table.get(key).is_none() {
            cx.at(at, format!("{path}.{key}"), "required key is missing");
        }
        return None;
    };
    match password::check_phc(s) {
        Ok(()) => Some(s.to_string()),
        Err(e) => {
            cx.at(span.start, format!("{path}.{key}"), e);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = password::DUMMY_HASH;

    fn run(text: &str, env: &[(&str, &str)]) -> (Option<AuthConfig>, Vec<String>) {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (doc, errs) = DeTable::parse_recoverable(text);
        assert!(errs.is_empty(), "{errs:?}");
        let mut cx = Ctx::new();
        cx.add_file("v.toml".into(), text.to_string(), true);
        let c = parse(&mut cx, doc.get_ref().get("auth"), &env);
        (c, cx.finish().0.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn absent_is_none() {
        let (c, e) = run("[vigil]\n", &[]);
        assert!(c.is_none() && e.is_empty());
    }

    #[test]
    fn full_and_defaults() {
        let text = format!(
            "[auth]\njwt_secret_env = \"S\"\n\n[[auth.users]]\nname = \"alice\"\nrole = \"admin\"\npassword_hash = \"{HASH}\"\n\n[[auth.tokens]]\nname = \"bot\"\nrole = \"ingest\"\nsecret_hash = \"{HASH}\"\n"
        );
        let (c, e) = run(&text, &[("S", &"x".repeat(40))]);
        assert!(e.is_empty(), "{e:?}");
        let c = c.expect("config");
        assert_eq!(c.token_ttl, DEFAULT_TOKEN_TTL);
        assert_eq!(c.metrics_role, Some(Role::Viewer));
        assert_eq!(c.users[0].role, Role::Admin);
        assert_eq!(c.tokens[0].role, Role::Ingest);
        assert!(matches!(c.jwt_secret, JwtSecretSource::Env { .. }));
        assert!(
            !format!("{c:?}").contains("xxxx"),
            "the secret must not show in Debug"
        );
    }

    #[test]
    fn located_errors() {
        let text = format!(
            "[auth]\njwt_secret = \"short\"\ntoken_ttl = \"5x\"\nmetrics_role = \"root\"\ncors_origins = [\"https://a.example/path\"]\nlogin_attempts_per_minut = 3\n\n[[auth.users]]\nname = \"bob smith\"\nrole = \"ingest\"\npassword_hash = \"plain\"\n\n[[auth.users]]\nrole = \"viewer\"\n\n[[auth.tokens]]\nname = \"a.b\"\nrole = \"viewer\"\nsecret_hash = \"{HASH}\"\n"
        );
        let (_, e) = run(&text, &[]);
        let joined = e.join("\n");
        for want in [
            "v.toml:2:14: auth.jwt_secret: too short",
            "v.toml:3:13: auth.token_ttl: expected a duration",
            "v.toml:4:16: auth.metrics_role: expected one of \"public\"",
            "v.toml:5:17: auth.cors_origins: expected an origin",
            "v.toml:6:1: auth.login_attempts_per_minut: unknown key, did you mean \"login_attempts_per_minute\"?",
            "v.toml:9:8: auth.users[0].name: invalid user name: contains ' '",
            "v.toml:10:8: auth.users[0].role: \"ingest\" is for machine tokens",
            "v.toml:11:17: auth.users[0].password_hash: expected an argon2 PHC string",
            "v.toml:13:1: auth.users[1].name: required key is missing",
            "auth.users[1].password_hash: required key is missing",
            "v.toml:17:8: auth.tokens[0].name: invalid token name: contains '.'",
        ] {
            assert!(joined.contains(want), "missing {want:?} in:\n{joined}");
        }
    }

    #[test]
    fn secret_sources() {
        let users = format!(
            "[[auth.users]]\nname = \"a\"\nrole = \"viewer\"\npassword_hash = \"{HASH}\"\n"
        );
        let (_, e) = run(&format!("[auth]\njwt_secret_env = \"NOPE\"\n{users}"), &[]);
        assert!(
            e[0].contains("environment variable NOPE is not set"),
            "{e:?}"
        );
        let (c, e) = run(&format!("[auth]\n{users}"), &[]);
        assert!(e.is_empty());
        assert_eq!(c.expect("c").jwt_secret, JwtSecretSource::Generated);
        let (_, e) = run(
            "[auth]\njwt_secret_env = \"X\"\n",
            &[("X", &"y".repeat(32))],
        );
        assert!(e[0].contains("nobody could authenticate"), "{e:?}");
        let dup = format!(
            "[auth]\n{users}[[auth.tokens]]\nname = \"a\"\nrole = \"ingest\"\nsecret_hash = \"{HASH}\"\n"
        );
        let (_, e) = run(&dup, &[]);
        assert!(e[0].contains("already used by a user"), "{e:?}");
    }

    #[test]
    fn durations() {
        let d = |s: &str| parse_duration(&DeValue::String(s.to_string().into()));
        assert_eq!(d("30m"), Some(Duration::from_secs(1800)));
        assert_eq!(d("8h"), Some(Duration::from_secs(28_800)));
        assert_eq!(d("90"), Some(Duration::from_secs(90)));
        assert_eq!(d("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(d("m"), None);
        assert_eq!(d("3 weeks"), None);
    }
}
