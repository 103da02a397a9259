//! Kraken REST facts for the connectivity probe (TRADING.md §5): the API-Sign signature,
//! and pure classifiers of the `error` array and of `SystemStatus`.
//!
//! No request is made here: the shell sends it and hands the body back.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256, Sha512};

use crate::rules::{ProbeOutcome, Status};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KrakenError {
    #[error("API secret is not valid base64: {0}")]
    InvalidSecret(String),
    #[error("invalid HMAC key: {0}")]
    InvalidKey(String),
    #[error("unexpected response: {0}")]
    Response(String),
}

/// `API-Sign` = base64(HMAC-SHA512(key = base64decode(secret),
/// msg = uri_path ‖ SHA256(nonce ‖ post_data))), the digest appended as raw bytes.
///
/// `uri_path` is from `/0/private/…` on; `post_data` is the exact url-encoded body,
/// `nonce=…` included.
pub fn api_sign(
    uri_path: &str,
    nonce: &str,
    post_data: &str,
    secret_b64: &str,
) -> Result<String, KrakenError> {
    let key = STANDARD
        .decode(secret_b64.trim())
        .map_err(|e| KrakenError::InvalidSecret(e.to_string()))?;
    let mut sha = Sha256::new();
    sha.update(nonce.as_bytes());
    sha.update(post_data.as_bytes());
    let digest = sha.finalize();
    let mut mac =
        Hmac::<Sha512>::new_from_slice(&key).map_err(|e| KrakenError::InvalidKey(e.to_string()))?;
    mac.update(uri_path.as_bytes());
    mac.update(&digest);
    Ok(STANDARD.encode(mac.finalize().into_bytes()))
}

/// Whether an API secret is usable for [`api_sign`] (base64), without showing it.
pub fn secret_is_valid(secret_b64: &str) -> bool {
    STANDARD
        .decode(secret_b64.trim())
        .is_ok_and(|k| !k.is_empty())
}

/// The next nonce for a key: always increasing, Unix ms when the clock allows.
pub fn next_nonce(last: u64, now_ms: u64) -> u64 {
    now_ms.max(last.saturating_add(1))
}

/// The body of the minimal private probe, `POST /0/private/Balance`.
pub fn balance_body(nonce: u64) -> String {
    format!("nonce={nonce}")
}

/// How the probe treats a Kraken error string (TRADING.md §5.4). Ordered by severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorClass {
    /// `W…`: a warning, not a failure.
    Warning,
    /// Any other error (bad request, unknown pair, …).
    Other,
    /// Rate limited: back off; not a connectivity failure.
    Throttled,
    /// The market is in a restricted mode.
    Degraded,
    /// The service is unavailable, busy, timed out or failed internally.
    Connectivity,
    /// Key, signature, nonce or permission problem.
    Auth,
    /// Too many failed calls: private calls stop until it expires.
    LockedOut,
}

/// Classifies one error string (`<E|W><Category>:<Message>`).
pub fn classify_error(code: &str) -> ErrorClass {
    let code = code.trim();
    if code.starts_with('W') {
        return ErrorClass::Warning;
    }
    const TABLE: &[(&str, ErrorClass)] = &[
        ("EGeneral:Temporary lockout", ErrorClass::LockedOut),
        ("EAPI:Invalid key", ErrorClass::Auth),
        ("EAPI:Invalid signature", ErrorClass::Auth),
        ("EAPI:Invalid nonce", ErrorClass::Auth),
        ("EGeneral:Permission denied", ErrorClass::Auth),
        ("EAuth:", ErrorClass::Auth),
        ("EAPI:Rate limit exceeded", ErrorClass::Throttled),
        ("EOrder:Rate limit exceeded", ErrorClass::Throttled),
        ("EService:Throttled", ErrorClass::Throttled),
        ("EService:Market in ", ErrorClass::Degraded),
        ("EGeneral:Internal error", ErrorClass::Connectivity),
        ("EService:", ErrorClass::Connectivity),
    ];
    TABLE
        .iter()
        .find(|(prefix, _)| code.starts_with(prefix))
        .map_or(ErrorClass::Other, |(_, c)| *c)
}

/// The most severe error of an `error` array, as a probe outcome (`Ok` when there is no
/// error, or only warnings).
pub fn outcome_of_errors<'a>(errors: impl IntoIterator<Item = &'a str>) -> ProbeOutcome {
    let worst = errors
        .into_iter()
        .map(|e| (classify_error(e), e))
        .max_by_key(|(c, _)| *c);
    match worst {
        None | Some((ErrorClass::Warning, _)) => ProbeOutcome::Ok,
        Some((class, e)) => {
            let e = e.trim().to_owned();
            match class {
                ErrorClass::Warning => ProbeOutcome::Ok,
                ErrorClass::Other => ProbeOutcome::Error(e),
                ErrorClass::Throttled => ProbeOutcome::Throttled(e),
                ErrorClass::Degraded => ProbeOutcome::Degraded(e),
                ErrorClass::Connectivity => ProbeOutcome::Connectivity(e),
                ErrorClass::Auth => ProbeOutcome::Auth(e),
                ErrorClass::LockedOut => ProbeOutcome::LockedOut(e),
            }
        }
    }
}

/// `SystemStatus.result.status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExchangeStatus {
    Online,
    PostOnly,
    CancelOnly,
    LimitOnly,
    Maintenance,
    /// Anything else: treated as degraded.
    Unknown(String),
}

impl ExchangeStatus {
    pub fn parse(s: &str) -> ExchangeStatus {
        match s.trim() {
            "online" => ExchangeStatus::Online,
            "post_only" => ExchangeStatus::PostOnly,
            "cancel_only" => ExchangeStatus::CancelOnly,
            "limit_only" => ExchangeStatus::LimitOnly,
            "maintenance" => ExchangeStatus::Maintenance,
            other => ExchangeStatus::Unknown(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ExchangeStatus::Online => "online",
            ExchangeStatus::PostOnly => "post_only",
            ExchangeStatus::CancelOnly => "cancel_only",
            ExchangeStatus::LimitOnly => "limit_only",
            ExchangeStatus::Maintenance => "maintenance",
            ExchangeStatus::Unknown(s) => s,
        }
    }

    /// online → ok; post_only, cancel_only, limit_only, unknown → warn (degraded);
    /// maintenance → critical (down).
    pub fn check_status(&self) -> Status {
        match self {
            ExchangeStatus::Online => Status::Ok,
            ExchangeStatus::Maintenance => Status::Critical,
            _ => Status::Warn,
        }
    }

    /// As a probe outcome: maintenance is a connectivity failure (it counts toward the
    /// consecutive-failure limit), restricted modes are degraded.
    pub fn outcome(&self) -> ProbeOutcome {
        match self.check_status() {
            Status::Ok => ProbeOutcome::Ok,
            Status::Critical => {
                ProbeOutcome::Connectivity(format!("exchange status: {}", self.as_str()))
            }
            _ => ProbeOutcome::Degraded(format!("exchange status: {}", self.as_str())),
        }
    }
}

/// Reads the `{"error":[…],"result":…}` envelope. A body that is not such JSON (an HTML
/// error page, a truncated answer) is a connectivity failure.
pub(crate) fn envelope(body: &str) -> Result<(Vec<String>, Value), ProbeOutcome> {
    let bad = |why: &str| ProbeOutcome::Connectivity(format!("unexpected response: {why}"));
    let v: Value = serde_json::from_str(body).map_err(|_| bad("not JSON"))?;
    let Value::Object(mut m) = v else {
        return Err(bad("not a JSON object"));
    };
    let errors = match m.remove("error") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .into_iter()
            .map(|e| match e {
                Value::String(s) => s,
                other => other.to_string(),
            })
            .collect(),
        Some(_) => return Err(bad("`error` is not an array")),
    };
    Ok((errors, m.remove("result").unwrap_or(Value::Null)))
}

/// Classifies a private call's response body (e.g. `Balance`).
pub fn classify_private_response(body: &str) -> ProbeOutcome {
    match envelope(body) {
        Err(o) => o,
        Ok((errors, result)) => match outcome_of_errors(errors.iter().map(String::as_str)) {
            ProbeOutcome::Ok if result.is_null() => {
                ProbeOutcome::Connectivity("unexpected response: no result".into())
            }
            o => o,
        },
    }
}

/// Classifies a `SystemStatus` response body.
pub fn classify_system_status(body: &str) -> ProbeOutcome {
    match envelope(body) {
        Err(o) => o,
        Ok((errors, result)) => match outcome_of_errors(errors.iter().map(String::as_str)) {
            ProbeOutcome::Ok => match result.get("status").and_then(Value::as_str) {
                Some(s) => ExchangeStatus::parse(s).outcome(),
                None => ProbeOutcome::Connectivity("unexpected response: no status".into()),
            },
            o => o,
        },
    }
}

/// Local clock minus Kraken's (`Time` → `result.unixtime`, seconds), in ms: a large skew is
/// the usual cause of `EAPI:Invalid nonce`.
pub fn clock_skew_ms(time_body: &str, local_now_ms: u64) -> Result<i64, KrakenError> {
    let (errors, result) =
        envelope(time_body).map_err(|o| KrakenError::Response(o.detail().to_owned()))?;
    if let Some(e) = errors.first() {
        return Err(KrakenError::Response(e.clone()));
    }
    let server_s = result
        .get("unixtime")
        .and_then(Value::as_i64)
        .ok_or_else(|| KrakenError::Response("no unixtime".into()))?;
    let local =
        i64::try_from(local_now_ms).map_err(|_| KrakenError::Response("local time".into()))?;
    Ok(local - server_s.saturating_mul(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs.kraken.com "Spot REST Authentication" → Examples (TRADING.md §5.2).
    #[test]
    fn api_sign_matches_krakens_published_example() {
        let secret = "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg==";
        let nonce = "1616492376594";
        let body =
            "nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25";
        let sign = api_sign("/0/private/AddOrder", nonce, body, secret).unwrap();
        assert_eq!(
            sign,
            "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
        );
        // the intermediate digest from TRADING.md, to pin "raw bytes, not hex"
        let mut sha = Sha256::new();
        sha.update(nonce.as_bytes());
        sha.update(body.as_bytes());
        let hex: String = sha.finalize().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "23a1c1b34c6a11d641af0f24684896cb90f66fb991125c83dc357bdc3dc146f1"
        );
    }

    #[test]
    fn api_sign_rejects_a_bad_secret() {
        assert!(!secret_is_valid("not base64!"));
        assert!(!secret_is_valid(""));
        assert!(secret_is_valid(
            "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
        ));
        assert!(matches!(
            api_sign("/0/private/Balance", "1", "nonce=1", "not base64!"),
            Err(KrakenError::InvalidSecret(_))
        ));
    }

    #[test]
    fn nonce_and_body() {
        assert_eq!(next_nonce(0, 1000), 1000);
        assert_eq!(next_nonce(1000, 1000), 1001);
        assert_eq!(next_nonce(5000, 1000), 5001, "clock went back");
        assert_eq!(balance_body(42), "nonce=42");
    }

    #[test]
    fn error_classes() {
        use ErrorClass::*;
        let cases = [
            ("EAPI:Invalid key", Auth),
            ("EAPI:Invalid signature", Auth),
            ("EAPI:Invalid nonce", Auth),
            ("EGeneral:Permission denied", Auth),
            ("EGeneral:Temporary lockout", LockedOut),
            ("EAPI:Rate limit exceeded", Throttled),
            ("EOrder:Rate limit exceeded", Throttled),
            ("EService:Throttled: 1700000000", Throttled),
            ("EService:Unavailable", Connectivity),
            ("EService:Busy", Connectivity),
            ("EService:Deadline elapsed", Connectivity),
            ("EGeneral:Internal error", Connectivity),
            ("EService:Market in cancel_only mode", Degraded),
            ("EService:Market in post_only mode", Degraded),
            ("EQuery:Unknown asset pair", Other),
            ("EGeneral:Invalid arguments", Other),
            ("WGeneral:Something", Warning),
        ];
        for (code, want) in cases {
            assert_eq!(classify_error(code), want, "{code}");
        }
    }

    #[test]
    fn outcome_of_error_arrays() {
        assert_eq!(outcome_of_errors([]), ProbeOutcome::Ok);
        assert_eq!(outcome_of_errors(["WGeneral:x"]), ProbeOutcome::Ok);
        assert_eq!(
            outcome_of_errors(["EAPI:Rate limit exceeded", "EAPI:Invalid key"]),
            ProbeOutcome::Auth("EAPI:Invalid key".into()),
            "the worst wins"
        );
    }

    #[test]
    fn system_status_table() {
        let body = |s: &str| {
            format!(
                r#"{{"error":[],"result":{{"status":"{s}","timestamp":"2023-07-06T18:52:00Z"}}}}"#
            )
        };
        let cases = [
            ("online", Status::Ok),
            ("post_only", Status::Warn),
            ("cancel_only", Status::Warn),
            ("limit_only", Status::Warn),
            ("something_new", Status::Warn),
            ("maintenance", Status::Critical),
        ];
        for (s, want) in cases {
            assert_eq!(ExchangeStatus::parse(s).check_status(), want, "{s}");
            let o = classify_system_status(&body(s));
            let expect = match want {
                Status::Ok => matches!(o, ProbeOutcome::Ok),
                Status::Warn => matches!(o, ProbeOutcome::Degraded(_)),
                _ => matches!(o, ProbeOutcome::Connectivity(_)),
            };
            assert!(expect, "{s}: {o:?}");
        }
        assert_eq!(ExchangeStatus::parse("online").as_str(), "online");
    }

    #[test]
    fn response_bodies() {
        let cases = [
            (r#"{"error":[],"result":{"ZUSD":"1.0"}}"#, ProbeOutcome::Ok),
            (
                r#"{"error":["EService:Unavailable"]}"#,
                ProbeOutcome::Connectivity("EService:Unavailable".into()),
            ),
            (
                r#"{"error":["EAPI:Invalid nonce"]}"#,
                ProbeOutcome::Auth("EAPI:Invalid nonce".into()),
            ),
            (
                "<html>520 origin error</html>",
                ProbeOutcome::Connectivity("unexpected response: not JSON".into()),
            ),
            (
                r#"{"error":[]}"#,
                ProbeOutcome::Connectivity("unexpected response: no result".into()),
            ),
            (
                r#"{"error":"EService:Unavailable"}"#,
                ProbeOutcome::Connectivity("unexpected response: `error` is not an array".into()),
            ),
        ];
        for (body, want) in cases {
            assert_eq!(classify_private_response(body), want, "{body}");
        }
        assert_eq!(
            classify_system_status(r#"{"error":["EGeneral:Temporary lockout"]}"#),
            ProbeOutcome::LockedOut("EGeneral:Temporary lockout".into())
        );
        assert!(matches!(
            classify_system_status(r#"{"error":[],"result":{}}"#),
            ProbeOutcome::Connectivity(_)
        ));
    }

    #[test]
    fn clock_skew() {
        let body = r#"{"error":[],"result":{"unixtime":1688669520,"rfc1123":"x"}}"#;
        assert_eq!(clock_skew_ms(body, 1_688_669_521_500), Ok(1500));
        assert_eq!(clock_skew_ms(body, 1_688_669_519_000), Ok(-1000));
        assert!(clock_skew_ms(r#"{"error":["EService:Busy"]}"#, 0).is_err());
        assert!(clock_skew_ms("nope", 0).is_err());
    }
}
