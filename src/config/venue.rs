//! `[venue.ID]` in vigil.toml: exchange accounts whose dead-man switch vigil keeps armed
//! (the `venue` module). Credentials come from files or environment variables, never from the
//! config text; a credential file that every user can read is refused. Every problem is
//! collected and located as `FILE:LINE:COL: key: message`, like the rest of the config.
//! Reference: docs/config.md.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};
use vigil_core::rules::Action;

use super::load::Ctx;
use crate::auth::Secret;
use crate::config::suggest;

pub const DEFAULT_TIMEOUT_S: u32 = 60;
pub const DEFAULT_REFRESH_S: f64 = 20.0;
pub const DEFAULT_REQUEST_TIMEOUT_S: f64 = 10.0;
pub const DEFAULT_CLOSE_TIMEOUT_S: f64 = 300.0;

/// Keys that would put a credential in the config text: refused with how to do it instead.
const FORBIDDEN: &[&str] = &["api_key", "api_secret", "secret", "key"];

const KEYS: &[&str] = &[
    "kind",
    "api_key_file",
    "api_key_env",
    "api_secret_file",
    "api_secret_env",
    "base_url",
    "request_timeout_s",
    "deadman_timeout_s",
    "deadman_refresh_s",
    "deadman_margin_s",
    "on_expiry",
    "halt_timeout_s",
    "cancel_on_halt",
    "close_timeout_s",
];

/// The exchange API a venue speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VenueKind {
    /// Kraken Spot REST: `CancelAllOrdersAfter`, `CancelAll`.
    Kraken,
}

impl VenueKind {
    pub const NAMES: &[&str] = &["kraken"];

    pub fn as_str(self) -> &'static str {
        match self {
            VenueKind::Kraken => "kraken",
        }
    }

    fn default_base_url(self) -> &'static str {
        match self {
            VenueKind::Kraken => vigil_core::venue::kraken::DEFAULT_BASE_URL,
        }
    }
}

/// One `[venue.ID]`.
#[derive(Debug, Clone, PartialEq)]
pub struct VenueConfig {
    pub id: String,
    pub kind: VenueKind,
    pub api_key: Secret,
    pub api_secret: Secret,
    /// Where the credentials come from (`file PATH` / `env VAR`), for display; never the
    /// values.
    pub credentials_from: String,
    pub base_url: String,
    pub request_timeout_s: f64,
    /// 0: never arm (a halt still cancels at the exchange when `cancel_on_halt`).
    pub deadman_timeout_s: u32,
    pub deadman_refresh_s: f64,
    pub deadman_margin_s: f64,
    /// What a critical dead-man check does: warn, reduce or halt.
    pub on_expiry: Action,
    /// On HALT, arm once with this shorter countdown instead of letting the running one
    /// run out.
    pub halt_timeout_s: Option<u32>,
    pub cancel_on_halt: bool,
    /// After a `close` halt, alert when a position is still open this long after it.
    pub close_timeout_s: f64,
}

/// Typed reads of one `[venue.ID]` table.
struct Tbl<'c, 't, 'i> {
    cx: &'c mut Ctx,
    t: &'t DeTable<'i>,
    path: String,
}

impl<'t, 'i> Tbl<'_, 't, 'i> {
    fn key(&self, k: &str) -> String {
        format!("{}.{k}", self.path)
    }

    fn bad(&mut self, k: &str, v: &Spanned<DeValue<'_>>, expected: &str) {
        let key = self.key(k);
        self.cx.expected(&key, v, expected);
    }

    fn str(&mut self, k: &str) -> Option<(&'t str, Range<usize>)> {
        self.cx.str_in(self.t, &self.path, k)
    }

    fn num(&mut self, k: &str, lo: f64, hi: f64, what: &str) -> Option<f64> {
        let v = self.t.get(k)?;
        let x = match v.get_ref() {
            DeValue::Integer(i) => i.as_str().parse::<f64>().ok(),
            DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
            _ => None,
        };
        match x {
            Some(x) if x.is_finite() && x >= lo && x <= hi => Some(x),
            _ => {
                self.bad(k, v, what);
                None
            }
        }
    }

    fn int(&mut self, k: &str, lo: u32, hi: u32, what: &str) -> Option<u32> {
        let v = self.t.get(k)?;
        let x = match v.get_ref() {
            DeValue::Integer(i) => i.as_str().parse::<i64>().ok(),
            _ => None,
        };
        match x.and_then(|x| u32::try_from(x).ok()) {
            Some(x) if x >= lo && x <= hi => Some(x),
            _ => {
                self.bad(k, v, what);
                None
            }
        }
    }

    fn bool(&mut self, k: &str) -> Option<bool> {
        let v = self.t.get(k)?;
        let key = self.key(k);
        self.cx.boolean(&key, v)
    }

    fn anchor(&self, k: &str) -> Option<usize> {
        self.t.get(k).map(|v| v.span().start)
    }

    /// `NAME_file` or `NAME_env`, exactly one; the value read now.
    fn credential(
        &mut self,
        name: &str,
        header: usize,
        here: &Path,
        env: &BTreeMap<String, String>,
    ) -> Option<(Secret, String)> {
        let file_key = format!("{name}_file");
        let env_key = format!("{name}_env");
        let file = self.str(&file_key);
        let var = self.str(&env_key);
        match (file, var) {
            (Some(_), Some((_, span))) => {
                let key = self.key(&env_key);
                self.cx.at(
                    span.start,
                    key,
                    format!("set either {file_key} or {env_key}, not both"),
                );
                None
            }
            (None, None) => {
                let key = self.key(&file_key);
                self.cx.at(
                    header,
                    key,
                    format!(
                        "required: {file_key} (a file readable only by vigil's user) or {env_key} \
                         (an environment variable); the secret itself never goes in the config"
                    ),
                );
                None
            }
            (None, Some((var, span))) => match env.get(var).map(|v| v.trim()) {
                None => {
                    let key = self.key(&env_key);
                    self.cx.at(
                        span.start,
                        key,
                        format!("environment variable {var} is not set"),
                    );
                    None
                }
                Some("") => {
                    let key = self.key(&env_key);
                    self.cx.at(
                        span.start,
                        key,
                        format!("environment variable {var} is empty"),
                    );
                    None
                }
                Some(v) => Some((Secret::new(v), format!("env {var}"))),
            },
            (Some((p, span)), None) => {
                let path = crate::config::resolve(here, Path::new(p));
                match read_secret_file(&path) {
                    Ok(v) => Some((Secret::new(v), format!("file {}", path.display()))),
                    Err(why) => {
                        let key = self.key(&file_key);
                        self.cx.at(span.start, key, why);
                        None
                    }
                }
            }
        }
    }
}

/// The trimmed contents of a credential file, refused when every user may read it.
fn read_secret_file(path: &Path) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    if !super::load::io_allowed() {
        return Ok("secret".into());
    }
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{}: not a regular file", path.display()));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o004 != 0 {
        return Err(format!(
            "{} is readable by every user (mode {mode:04o}); refusing a world-readable secret \
             (chmod 600 it)",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let v = text.trim();
    if v.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(v.to_string())
}

fn id_problem(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        Some("is empty")
    } else if id.len() > 64 {
        Some("is longer than 64 characters")
    } else if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        Some("may contain only letters, digits, '_' and '-'")
    } else {
        None
    }
}

/// Parse `[venue.*]` (`v` is the `venue` value of the document, if any).
pub(super) fn parse(
    cx: &mut Ctx,
    v: Option<&Spanned<DeValue<'_>>>,
    here: &Path,
    env: &BTreeMap<String, String>,
) -> Vec<VenueConfig> {
    let mut out = Vec::new();
    let Some(v) = v else { return out };
    let Some(venues) = cx.table(
        "venue".to_string(),
        v,
        "a table of venues ([venue.ID] sections)",
    ) else {
        return out;
    };
    for (k, item) in venues.iter() {
        let id: &str = k.get_ref();
        let path = format!("venue.{id}");
        let header = k.span().start;
        if let Some(p) = id_problem(id) {
            cx.at(header, path.clone(), format!("invalid venue id: {p}"));
        }
        let Some(t) = cx.table(path.clone(), item, "a table ([venue.ID])") else {
            continue;
        };
        let before = cx.errors.len();
        for (key, _) in t.iter() {
            let name: &str = key.get_ref();
            if FORBIDDEN.contains(&name) {
                cx.at(
                    key.span().start,
                    format!("{path}.{name}"),
                    "credentials never go in the config text: use api_key_file/api_secret_file \
                     (a file readable only by vigil's user) or api_key_env/api_secret_env",
                );
            }
        }
        let known: Vec<&str> = KEYS.iter().chain(FORBIDDEN).copied().collect();
        cx.unknown_in(t, &path, &known);
        let mut f = Tbl {
            cx: &mut *cx,
            t,
            path: path.clone(),
        };
        let kind = match f.str("kind") {
            None => {
                if t.get("kind").is_none() {
                    let key = f.key("kind");
                    f.cx.at(
                        header,
                        key,
                        format!(
                            "required key is missing (one of: {})",
                            VenueKind::NAMES.join(", ")
                        ),
                    );
                }
                None
            }
            Some(("kraken", _)) => Some(VenueKind::Kraken),
            Some((other, span)) => {
                let key = f.key("kind");
                let hint = suggest(other, VenueKind::NAMES)
                    .map(|s| format!(", did you mean \"{s}\"?"))
                    .unwrap_or_default();
                f.cx.at(
                    span.start,
                    key,
                    format!(
                        "unknown venue kind {other:?}{hint} (known: {})",
                        VenueKind::NAMES.join(", ")
                    ),
                );
                None
            }
        };
        let key = f.credential("api_key", header, here, env);
        let secret = f.credential("api_secret", header, here, env);
        if let (Some(VenueKind::Kraken), Some((s, _))) = (kind, &secret)
            && !vigil_core::kraken::secret_is_valid(s.expose())
        {
            let k = if t.get("api_secret_file").is_some() {
                "api_secret_file"
            } else {
                "api_secret_env"
            };
            let at = f.anchor(k).unwrap_or(header);
            let kk = f.key(k);
            f.cx.at(
                at,
                kk,
                "the secret is not valid base64 (a Kraken private key is base64)",
            );
        }
        let base_url = match f.str("base_url") {
            Some((u, span)) => {
                let u = u.trim().trim_end_matches('/');
                if !(u.starts_with("http://") || u.starts_with("https://")) || u.len() < 10 {
                    let k = f.key("base_url");
                    f.cx.at(
                        span.start,
                        k,
                        format!("expected an http:// or https:// URL, found {u:?}"),
                    );
                }
                Some(u.to_string())
            }
            None => None,
        };
        let request_timeout_s = f
            .num(
                "request_timeout_s",
                0.1,
                120.0,
                "a number of seconds from 0.1 to 120",
            )
            .unwrap_or(DEFAULT_REQUEST_TIMEOUT_S);
        let deadman_timeout_s = f
            .int(
                "deadman_timeout_s",
                0,
                86_400,
                "an integer number of seconds from 0 (do not arm) to 86400",
            )
            .unwrap_or(DEFAULT_TIMEOUT_S);
        let refresh = f.num(
            "deadman_refresh_s",
            0.1,
            86_400.0,
            "a number of seconds from 0.1 to 86400",
        );
        let deadman_refresh_s = refresh.unwrap_or(DEFAULT_REFRESH_S);
        let margin = f.num(
            "deadman_margin_s",
            0.0,
            86_400.0,
            "a number of seconds from 0 to 86400",
        );
        let timeout = f64::from(deadman_timeout_s);
        if deadman_timeout_s > 0 && deadman_refresh_s >= timeout {
            let at = f
                .anchor("deadman_refresh_s")
                .or(f.anchor("deadman_timeout_s"));
            let k = f.key("deadman_refresh_s");
            f.cx.at(
                at.unwrap_or(header),
                k,
                format!(
                    "must be shorter than deadman_timeout_s ({deadman_timeout_s} s), or the exchange \
                     fires between two refreshes (Kraken suggests every 15-30 s with 60)"
                ),
            );
        }
        let deadman_margin_s = margin.unwrap_or(deadman_refresh_s.min(timeout / 2.0));
        if let Some(m) = margin
            && deadman_timeout_s > 0
            && m >= timeout
        {
            let at = f.anchor("deadman_margin_s").unwrap_or(header);
            let k = f.key("deadman_margin_s");
            f.cx.at(
                at,
                k,
                format!("must be shorter than deadman_timeout_s ({deadman_timeout_s} s)"),
            );
        }
        let on_expiry = match f.str("on_expiry") {
            None => Action::Halt,
            Some(("warn", _)) => Action::Warn,
            Some(("reduce", _)) => Action::Reduce,
            Some(("halt", _)) => Action::Halt,
            Some((other, span)) => {
                let k = f.key("on_expiry");
                f.cx.at(
                    span.start,
                    k,
                    format!(
                        "expected one of \"warn\", \"reduce\", \"halt\", found string {other:?}"
                    ),
                );
                Action::Halt
            }
        };
        let halt_timeout_s = f.int(
            "halt_timeout_s",
            1,
            86_400,
            "an integer number of seconds from 1 to 86400",
        );
        if let Some(h) = halt_timeout_s
            && deadman_timeout_s > 0
            && h >= deadman_timeout_s
        {
            let at = f.anchor("halt_timeout_s").unwrap_or(header);
            let k = f.key("halt_timeout_s");
            f.cx.at(
                at,
                k,
                format!(
                    "must be shorter than deadman_timeout_s ({deadman_timeout_s} s): it shortens the countdown on HALT"
                ),
            );
        }
        let cancel_on_halt = f.bool("cancel_on_halt").unwrap_or(true);
        let close_timeout_s = f
            .num(
                "close_timeout_s",
                0.1,
                7.0 * 86_400.0,
                "a number of seconds from 0.1 to 604800",
            )
            .unwrap_or(DEFAULT_CLOSE_TIMEOUT_S);
        if cx.errors.len() != before {
            continue;
        }
        if let (Some(kind), Some((api_key, key_from)), Some((api_secret, secret_from))) =
            (kind, key, secret)
        {
            out.push(VenueConfig {
                id: id.to_string(),
                kind,
                api_key,
                api_secret,
                credentials_from: format!("key: {key_from}; secret: {secret_from}"),
                base_url: base_url.unwrap_or_else(|| kind.default_base_url().to_string()),
                request_timeout_s,
                deadman_timeout_s,
                deadman_refresh_s,
                deadman_margin_s,
                on_expiry,
                halt_timeout_s,
                cancel_on_halt,
                close_timeout_s,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const SECRET: &str =
        "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg==";

    fn run(text: &str, env: &[(&str, &str)]) -> (Vec<VenueConfig>, Vec<String>) {
        let file = Path::new("/etc/vigil/vigil.toml");
        let doc = DeTable::parse(text).expect("toml");
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut cx = Ctx::new();
        cx.add_file(file.to_path_buf(), text.to_string(), true);
        let here = file.parent().unwrap_or(Path::new("."));
        let v = parse(&mut cx, doc.get_ref().get("venue"), here, &env);
        (
            v,
            cx.finish()
                .0
                .iter()
                .map(|e| format!("{}:{}: {}: {}", e.line, e.col, e.key, e.message))
                .collect(),
        )
    }

    const ENV: &[(&str, &str)] = &[("K", "my-key"), ("S", SECRET)];

    #[test]
    fn defaults() {
        let (v, e) = run(
            "[venue.kraken]\nkind = \"kraken\"\napi_key_env = \"K\"\napi_secret_env = \"S\"\n",
            ENV,
        );
        assert!(e.is_empty(), "{e:?}");
        let v = &v[0];
        assert_eq!(v.id, "kraken");
        assert_eq!(v.base_url, "https://api.kraken.com");
        assert_eq!(
            (v.deadman_timeout_s, v.deadman_refresh_s, v.deadman_margin_s),
            (60, 20.0, 20.0)
        );
        assert_eq!(v.on_expiry, Action::Halt);
        assert_eq!(v.halt_timeout_s, None);
        assert!(v.cancel_on_halt);
        assert_eq!(v.close_timeout_s, 300.0);
        assert_eq!(v.api_key.expose(), "my-key");
        assert_eq!(v.credentials_from, "key: env K; secret: env S");
        // Never the secret in debug output.
        assert!(!format!("{v:?}").contains(SECRET));
        assert!(!format!("{v:?}").contains("my-key"));
    }

    #[test]
    fn every_option_and_zero_means_do_not_arm() {
        let (v, e) = run(
            "[venue.k2]\nkind = \"kraken\"\napi_key_env = \"K\"\napi_secret_env = \"S\"\n\
             base_url = \"http://127.0.0.1:9/\"\nrequest_timeout_s = 2.5\ndeadman_timeout_s = 0\n\
             deadman_refresh_s = 5\non_expiry = \"reduce\"\nhalt_timeout_s = 5\ncancel_on_halt = false\n\
             close_timeout_s = 30\n",
            ENV,
        );
        assert!(e.is_empty(), "{e:?}");
        let v = &v[0];
        assert_eq!(v.base_url, "http://127.0.0.1:9");
        assert_eq!(v.deadman_timeout_s, 0);
        assert_eq!(v.on_expiry, Action::Reduce);
        assert_eq!(v.halt_timeout_s, Some(5));
        assert!(!v.cancel_on_halt);
        assert_eq!(v.request_timeout_s, 2.5);
        assert_eq!(v.close_timeout_s, 30.0);
    }

    #[test]
    fn located_errors() {
        let (v, e) = run(
            "[venue.a]\nkind = \"kraken\"\napi_key_env = \"K\"\napi_key_file = \"/x\"\n\
             api_secret_env = \"NOPE\"\ndeadman_timeout_s = -1\ndeadman_margin_s = \"x\"\n\
             on_expiry = \"panic\"\nbase_url = \"ftp://x\"\n\
             [venue.\"b c\"]\nkind = \"kraken\"\napi_key_env = \"K\"\napi_secret_env = \"K\"\n\
             deadman_timeout_s = 30\ndeadman_margin_s = 30\nhalt_timeout_s = 30\n",
            ENV,
        );
        assert!(v.is_empty());
        let want = [
            "3:15: venue.a.api_key_env: set either api_key_file or api_key_env, not both",
            "5:18: venue.a.api_secret_env: environment variable NOPE is not set",
            "6:21: venue.a.deadman_timeout_s: expected an integer number of seconds from 0 (do not arm) to 86400, found integer -1",
            "7:20: venue.a.deadman_margin_s: expected a number of seconds from 0 to 86400, found string \"x\"",
            "8:13: venue.a.on_expiry: expected one of \"warn\", \"reduce\", \"halt\", found string \"panic\"",
            "9:12: venue.a.base_url: expected an http:// or https:// URL, found \"ftp://x\"",
            "10:8: venue.b c: invalid venue id: may contain only letters, digits, '_' and '-'",
            "13:18: venue.b c.api_secret_env: the secret is not valid base64 (a Kraken private key is base64)",
            "15:20: venue.b c.deadman_margin_s: must be shorter than deadman_timeout_s (30 s)",
            "16:18: venue.b c.halt_timeout_s: must be shorter than deadman_timeout_s (30 s): it shortens the countdown on HALT",
        ];
        for w in want {
            assert!(e.iter().any(|x| x == w), "missing {w:?} in {e:#?}");
        }
    }

    #[test]
    fn secret_files_must_not_be_world_readable() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("s");
        std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
        let text = format!(
            "[venue.k]\nkind = \"kraken\"\napi_key_env = \"K\"\napi_secret_file = \"{}\"\n",
            secret.display()
        );
        for (mode, ok) in [(0o600, true), (0o640, true), (0o604, false), (0o644, false)] {
            std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(mode)).unwrap();
            let (v, e) = run(&text, ENV);
            assert_eq!(e.is_empty(), ok, "{mode:o}: {e:?}");
            if ok {
                assert_eq!(v[0].api_secret.expose(), SECRET, "trimmed");
            } else {
                assert!(e[0].contains("readable by every user"), "{e:?}");
            }
        }
        std::fs::write(&secret, "\n").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(run(&text, ENV).1[0].ends_with("is empty"));
        std::fs::remove_file(&secret).unwrap();
        assert!(run(&text, ENV).1[0].contains("No such file"));
    }
}
