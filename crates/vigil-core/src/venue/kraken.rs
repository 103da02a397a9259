//! Kraken Spot REST's dead-man switch and cancel-all (TRADING.md §4.3, §5): the request
//! paths and bodies, and the classification of their answers. Signing is
//! [`crate::kraken::api_sign`].

use serde_json::Value;

use super::{CancelAfter, Failure, FailureClass};
use crate::kraken::{ErrorClass, classify_error, envelope};
use crate::rules::Millis;

pub const DEFAULT_BASE_URL: &str = "https://api.kraken.com";
pub const CANCEL_ALL_AFTER_PATH: &str = "/0/private/CancelAllOrdersAfter";
pub const CANCEL_ALL_PATH: &str = "/0/private/CancelAll";

/// `nonce=…&timeout=…` (`timeout = 0` disables the timer).
pub fn cancel_all_after_body(nonce: u64, timeout_s: u32) -> String {
    format!("nonce={nonce}&timeout={timeout_s}")
}

/// `nonce=…`.
pub fn cancel_all_body(nonce: u64) -> String {
    format!("nonce={nonce}")
}

fn class_of(e: ErrorClass) -> FailureClass {
    match e {
        ErrorClass::Auth => FailureClass::Auth,
        ErrorClass::LockedOut => FailureClass::LockedOut,
        ErrorClass::Throttled => FailureClass::Throttled,
        ErrorClass::Degraded => FailureClass::Degraded,
        ErrorClass::Connectivity => FailureClass::Connectivity,
        ErrorClass::Warning | ErrorClass::Other => FailureClass::Other,
    }
}

/// The worst error of an `error` array as a failure; `None` when there are only warnings.
fn failure_of(errors: &[String]) -> Option<Failure> {
    let (class, e) = errors
        .iter()
        .map(|e| (classify_error(e), e.trim()))
        .filter(|(c, _)| *c != ErrorClass::Warning)
        .max_by_key(|(c, _)| *c)?;
    let mut f = Failure::new(class_of(class), e);
    // `EService:Throttled: <unix seconds>`: retry after that time.
    if let Some(ts) = e.strip_prefix("EService:Throttled:") {
        f.retry_at_ms = ts
            .trim()
            .parse::<u64>()
            .ok()
            .map(|s| s.saturating_mul(1000));
    }
    Some(f)
}

/// Classify an HTTP answer: 5xx is a connectivity failure; anything else must be Kraken's
/// `{"error":[…],"result":…}` envelope (API errors come back with HTTP 200), whose
/// `result` `read` turns into the value.
pub fn answer<T>(
    http_status: u16,
    body: &str,
    read: impl FnOnce(&Value) -> Result<T, Failure>,
) -> Result<T, Failure> {
    if http_status >= 500 {
        return Err(Failure::new(
            FailureClass::Connectivity,
            format!("HTTP {http_status}"),
        ));
    }
    let (errors, result) = envelope(body).map_err(|o| match http_status {
        200 => Failure::malformed(o.detail().trim_start_matches("unexpected response: ")),
        s => Failure::new(FailureClass::Other, format!("HTTP {s}")),
    })?;
    if let Some(f) = failure_of(&errors) {
        return Err(f);
    }
    if result.is_null() {
        return Err(Failure::malformed("no result"));
    }
    read(&result)
}

fn rfc3339_ms(s: &str) -> Option<Millis> {
    let t = chrono::DateTime::parse_from_rfc3339(s.trim()).ok()?;
    u64::try_from(t.timestamp_millis()).ok()
}

/// `CancelAllOrdersAfter` → `{"currentTime": RFC 3339, "triggerTime": RFC 3339 or "0"}`
/// (`"0"`: the timer is off).
pub fn classify_cancel_all_after(http_status: u16, body: &str) -> Result<CancelAfter, Failure> {
    answer(http_status, body, |r| {
        let current_time = r
            .get("currentTime")
            .and_then(Value::as_str)
            .ok_or_else(|| Failure::malformed("no currentTime"))?;
        let current_ms = rfc3339_ms(current_time)
            .ok_or_else(|| Failure::malformed(format!("currentTime {current_time:?}")))?;
        let trigger_time = match r.get("triggerTime") {
            Some(Value::String(s)) => s.as_str(),
            Some(Value::Number(n)) if n.as_u64() == Some(0) => "0",
            _ => return Err(Failure::malformed("no triggerTime")),
        };
        let trigger_ms = match trigger_time.trim() {
            "0" | "" => None,
            t => Some(
                rfc3339_ms(t).ok_or_else(|| Failure::malformed(format!("triggerTime {t:?}")))?,
            ),
        };
        Ok(CancelAfter {
            current_ms,
            trigger_ms,
            current_time: current_time.to_owned(),
            trigger_time: trigger_time.to_owned(),
        })
    })
}

/// `CancelAll` → `{"count": N}`: how many orders the exchange cancelled.
pub fn classify_cancel_all(http_status: u16, body: &str) -> Result<u64, Failure> {
    answer(http_status, body, |r| {
        r.get("count")
            .and_then(Value::as_u64)
            .ok_or_else(|| Failure::malformed("no count"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kraken::api_sign;

    const SECRET: &str =
        "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg==";

    /// The signer the dead-man calls use is the one that reproduces Kraken's published
    /// example (docs.kraken.com "Spot REST Authentication", TRADING.md §5.2).
    #[test]
    fn signing_reproduces_krakens_vector_and_covers_path_nonce_and_body() {
        let body =
            "nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25";
        assert_eq!(
            api_sign("/0/private/AddOrder", "1616492376594", body, SECRET).unwrap(),
            "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
        );
        let b = cancel_all_after_body(1616492376594, 60);
        assert_eq!(b, "nonce=1616492376594&timeout=60");
        let s = api_sign(CANCEL_ALL_AFTER_PATH, "1616492376594", &b, SECRET).unwrap();
        // Each input changes the signature.
        let other_path = api_sign(CANCEL_ALL_PATH, "1616492376594", &b, SECRET).unwrap();
        let other_body = api_sign(
            CANCEL_ALL_AFTER_PATH,
            "1616492376594",
            &cancel_all_after_body(1616492376594, 0),
            SECRET,
        )
        .unwrap();
        let other_nonce = api_sign(CANCEL_ALL_AFTER_PATH, "1616492376595", &b, SECRET).unwrap();
        assert!(s != other_path && s != other_body && s != other_nonce);
        assert_eq!(s.len(), 88, "base64 of 64 bytes");
        assert_eq!(cancel_all_body(7), "nonce=7");
    }

    #[test]
    fn cancel_all_after_answers() {
        let ok = r#"{"error":[],"result":{"currentTime":"2023-03-24T17:41:56Z","triggerTime":"2023-03-24T17:42:56Z"}}"#;
        let a = classify_cancel_all_after(200, ok).unwrap();
        assert_eq!(a.trigger_ms.unwrap() - a.current_ms, 60_000);
        assert_eq!(a.trigger_time, "2023-03-24T17:42:56Z");
        assert_eq!(a.current_ms, 1_679_679_716_000);
        let off =
            r#"{"error":[],"result":{"currentTime":"2023-03-24T17:41:56Z","triggerTime":"0"}}"#;
        assert_eq!(
            classify_cancel_all_after(200, off).unwrap().trigger_ms,
            None
        );
        let warn = r#"{"error":["WGeneral:Something"],"result":{"currentTime":"2023-03-24T17:41:56Z","triggerTime":"0"}}"#;
        assert!(
            classify_cancel_all_after(200, warn).is_ok(),
            "a warning is not a failure"
        );
    }

    fn class(r: Result<CancelAfter, Failure>) -> (FailureClass, String) {
        let f = r.unwrap_err();
        (f.class, f.detail)
    }

    /// Each answer class of TRADING.md §5.4 for the dead-man call.
    #[test]
    fn cancel_all_after_failure_classes() {
        use FailureClass::*;
        let err = |e: &str| format!(r#"{{"error":["{e}"]}}"#);
        let cases = [
            (200, err("EAPI:Invalid key"), Auth, "EAPI:Invalid key"),
            (200, err("EAPI:Invalid signature"), Auth, "EAPI:Invalid signature"),
            (200, err("EAPI:Invalid nonce"), Auth, "EAPI:Invalid nonce"),
            (200, err("EGeneral:Permission denied"), Auth, "EGeneral:Permission denied"),
            (200, err("EGeneral:Temporary lockout"), LockedOut, "EGeneral:Temporary lockout"),
            (200, err("EAPI:Rate limit exceeded"), Throttled, "EAPI:Rate limit exceeded"),
            (200, err("EService:Unavailable"), Connectivity, "EService:Unavailable"),
            (200, err("EService:Busy"), Connectivity, "EService:Busy"),
            (200, err("EGeneral:Internal error"), Connectivity, "EGeneral:Internal error"),
            (200, err("EService:Market in cancel_only mode"), Degraded, "EService:Market in cancel_only mode"),
            (200, err("EGeneral:Invalid arguments"), Other, "EGeneral:Invalid arguments"),
            (503, "<html>down</html>".into(), Connectivity, "HTTP 503"),
            (520, String::new(), Connectivity, "HTTP 520"),
            (200, "<html>oops</html>".into(), Malformed, "unexpected response: not JSON"),
            (200, "[1,2]".into(), Malformed, "unexpected response: not a JSON object"),
            (200, r#"{"error":[]}"#.into(), Malformed, "unexpected response: no result"),
            (200, r#"{"error":[],"result":{"triggerTime":"0"}}"#.into(), Malformed, "unexpected response: no currentTime"),
            (200, r#"{"error":[],"result":{"currentTime":"2023-03-24T17:41:56Z"}}"#.into(), Malformed, "unexpected response: no triggerTime"),
            (200, r#"{"error":[],"result":{"currentTime":"yesterday","triggerTime":"0"}}"#.into(), Malformed, "unexpected response: currentTime \"yesterday\""),
            (200, r#"{"error":[],"result":{"currentTime":"2023-03-24T17:41:56Z","triggerTime":"soon"}}"#.into(), Malformed, "unexpected response: triggerTime \"soon\""),
            (404, "not found".into(), Other, "HTTP 404"),
        ];
        for (status, body, want, detail) in cases {
            assert_eq!(
                class(classify_cancel_all_after(status, &body)),
                (want, detail.to_string()),
                "{status} {body}"
            );
        }
        // The worst error of several wins.
        let both = r#"{"error":["EAPI:Rate limit exceeded","EGeneral:Permission denied"]}"#;
        assert_eq!(class(classify_cancel_all_after(200, both)).0, Auth);
    }

    #[test]
    fn throttled_with_a_retry_time() {
        let f = classify_cancel_all_after(200, r#"{"error":["EService:Throttled: 1700000000"]}"#)
            .unwrap_err();
        assert_eq!(f.class, FailureClass::Throttled);
        assert_eq!(f.retry_at_ms, Some(1_700_000_000_000));
        let f = classify_cancel_all_after(200, r#"{"error":["EAPI:Rate limit exceeded"]}"#)
            .unwrap_err();
        assert_eq!(f.retry_at_ms, None);
    }

    #[test]
    fn cancel_all_answers() {
        assert_eq!(
            classify_cancel_all(200, r#"{"error":[],"result":{"count":4}}"#),
            Ok(4)
        );
        assert_eq!(
            classify_cancel_all(200, r#"{"error":[],"result":{"count":0,"pending":false}}"#),
            Ok(0)
        );
        let f = classify_cancel_all(200, r#"{"error":[],"result":{"count":-1}}"#).unwrap_err();
        assert_eq!(f.class, FailureClass::Malformed);
        let f =
            classify_cancel_all(200, r#"{"error":["EGeneral:Permission denied"]}"#).unwrap_err();
        assert_eq!(
            (f.class, f.detail.as_str()),
            (FailureClass::Auth, "EGeneral:Permission denied")
        );
        let f = classify_cancel_all(200, r#"{"error":["EAPI:Rate limit exceeded"]}"#).unwrap_err();
        assert_eq!(f.class, FailureClass::Throttled);
    }
}
