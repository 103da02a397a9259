//! Kraken Spot REST: `CancelAllOrdersAfter` and `CancelAll`, form-encoded, signed with
//! API-Key/API-Sign (`vigil_core::kraken::api_sign`), classified by
//! `vigil_core::venue::kraken`. The secrets never reach a log line.

use std::time::Duration;

use futures::future::BoxFuture;
use vigil_core::kraken::api_sign;
use vigil_core::venue::kraken as k;
use vigil_core::venue::{CancelAfter, Failure, FailureClass};

use super::Client;
use crate::auth::Secret;
use crate::config::venue::VenueConfig;

#[derive(Clone)]
pub struct Kraken {
    base: String,
    key: Secret,
    secret: Secret,
    timeout_s: f64,
    http: reqwest::Client,
}

impl Kraken {
    pub fn new(cfg: &VenueConfig) -> Kraken {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs_f64(cfg.request_timeout_s))
            .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Kraken {
            base: cfg.base_url.trim_end_matches('/').to_string(),
            key: cfg.api_key.clone(),
            secret: cfg.api_secret.clone(),
            timeout_s: cfg.request_timeout_s,
            http,
        }
    }

    /// POST a private call; the HTTP status and body, or the transport failure.
    async fn private(
        &self,
        path: &str,
        nonce: u64,
        body: String,
    ) -> Result<(u16, String), Failure> {
        let sign = api_sign(path, &nonce.to_string(), &body, self.secret.expose())
            .map_err(|e| Failure::new(FailureClass::Auth, format!("cannot sign: {e}")))?;
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("API-Key", self.key.expose())
            .header("API-Sign", sign)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        let fut = async {
            let r = req.send().await.map_err(|e| self.transport(&e))?;
            let status = r.status().as_u16();
            let text = r.text().await.map_err(|e| self.transport(&e))?;
            Ok((status, text))
        };
        match tokio::time::timeout(Duration::from_secs_f64(self.timeout_s), fut).await {
            Ok(r) => r,
            Err(_) => Err(Failure::timeout(self.timeout_s)),
        }
    }

    fn transport(&self, e: &reqwest::Error) -> Failure {
        if e.is_timeout() {
            Failure::timeout(self.timeout_s)
        } else if e.is_connect() {
            // Without the URL's query (none here) and never with headers.
            Failure::new(
                FailureClass::Connectivity,
                format!("cannot connect to {}", self.base),
            )
        } else {
            Failure::new(FailureClass::Connectivity, e.to_string())
        }
    }
}

impl Client for Kraken {
    fn cancel_all_after(
        &self,
        nonce: u64,
        timeout_s: u32,
    ) -> BoxFuture<'static, Result<CancelAfter, Failure>> {
        let me = self.clone();
        Box::pin(async move {
            let (status, body) = me
                .private(
                    k::CANCEL_ALL_AFTER_PATH,
                    nonce,
                    k::cancel_all_after_body(nonce, timeout_s),
                )
                .await?;
            k::classify_cancel_all_after(status, &body)
        })
    }

    fn cancel_all(&self, nonce: u64) -> BoxFuture<'static, Result<u64, Failure>> {
        let me = self.clone();
        Box::pin(async move {
            let (status, body) = me
                .private(k::CANCEL_ALL_PATH, nonce, k::cancel_all_body(nonce))
                .await?;
            k::classify_cancel_all(status, &body)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::rules::Action;

    fn cfg(base_url: String, timeout_s: f64) -> VenueConfig {
        VenueConfig {
            id: "k".into(),
            kind: crate::config::venue::VenueKind::Kraken,
            api_key: Secret::new("key"),
            api_secret: Secret::new(
                "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg==",
            ),
            credentials_from: String::new(),
            base_url,
            request_timeout_s: timeout_s,
            deadman_timeout_s: 60,
            deadman_refresh_s: 20.0,
            deadman_margin_s: 20.0,
            on_expiry: Action::Halt,
            halt_timeout_s: None,
            cancel_on_halt: true,
            close_timeout_s: 300.0,
        }
    }

    #[tokio::test]
    async fn transport_failures_are_classified() {
        // Nothing listens: connectivity.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let f = Kraken::new(&cfg(url.clone(), 2.0))
            .cancel_all_after(1, 60)
            .await
            .unwrap_err();
        assert_eq!(f.class, FailureClass::Connectivity, "{f:?}");
        assert!(f.detail.contains("cannot connect"), "{f:?}");
        // Accepts and never answers: timeout.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", silent.local_addr().unwrap());
        let held = tokio::spawn(async move {
            let mut keep = Vec::new();
            while let Ok((s, _)) = silent.accept().await {
                keep.push(s);
            }
        });
        let f = Kraken::new(&cfg(url, 0.2)).cancel_all(1).await.unwrap_err();
        assert_eq!(f.class, FailureClass::Timeout, "{f:?}");
        assert_eq!(f.detail, "timed out after 0.2 s");
        held.abort();
    }

    #[tokio::test]
    async fn a_bad_secret_is_an_auth_failure_and_is_not_shown() {
        let mut c = cfg("http://127.0.0.1:9".into(), 1.0);
        c.api_secret = Secret::new("not base64!");
        let f = Kraken::new(&c).cancel_all(1).await.unwrap_err();
        assert_eq!(f.class, FailureClass::Auth);
        assert!(!f.detail.contains("not base64!"), "{f:?}");
    }
}
