//! Sessions: `POST /api/auth/login` and `GET /api/auth/me`.

use serde::{Deserialize, Serialize};

/// `POST /api/auth/login` (the OpenAPI `Login` schema); the same JWT is also set as the
/// HttpOnly session cookie, and `csrf_token` as the CSRF cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    /// What unsafe requests of a cookie session send as `X-CSRF-Token`.
    pub csrf_token: String,
    /// RFC 3339.
    pub expires_at: String,
    /// Seconds.
    pub expires_in: u64,
    /// `admin`, `operator` or `viewer`.
    pub role: String,
    pub token: String,
    /// `Bearer`.
    pub token_type: String,
    pub user: String,
}

/// `GET /api/auth/me`: who the caller is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    /// False without `[auth]` (everything open, loopback only).
    pub auth_enabled: bool,
    /// The session's CSRF token (`null` for a bearer token or without `[auth]`).
    pub csrf_token: Option<String>,
    /// When the credential expires (RFC 3339), `null` when it does not.
    pub expires_at: Option<String>,
    /// `user`, `token` or `local`.
    pub kind: String,
    pub name: String,
    pub role: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::model::golden::assert_wire;

    #[test]
    fn sessions_are_served_as_before() {
        // What the handlers' `json!` objects served before these types existed.
        assert_wire(
            &Login {
                csrf_token: "c0ffee".into(),
                expires_at: "2026-12-04T20:49:00Z".into(),
                expires_in: 86_400,
                role: "admin".into(),
                token: "eyJ.x.y".into(),
                token_type: "Bearer".into(),
                user: "alice".into(),
            },
            r#"{"csrf_token":"c0ffee","expires_at":"2026-12-04T20:49:00Z","expires_in":86400,"role":"admin","token":"eyJ.x.y","token_type":"Bearer","user":"alice"}"#,
        );
        assert_wire(
            &Me {
                auth_enabled: false,
                csrf_token: None,
                expires_at: None,
                kind: "local".into(),
                name: "local".into(),
                role: "admin".into(),
            },
            r#"{"auth_enabled":false,"csrf_token":null,"expires_at":null,"kind":"local","name":"local","role":"admin"}"#,
        );
    }

    /// The OpenAPI document's `Login` schema lists exactly the fields of [`Login`].
    #[test]
    fn the_openapi_login_schema_is_the_login_type() {
        let doc = crate::api::openapi::document();
        let mut props: Vec<&str> = doc["components"]["schemas"]["Login"]["properties"]
            .as_object()
            .expect("Login has properties")
            .keys()
            .map(String::as_str)
            .collect();
        props.sort_unstable();
        let sample = serde_json::to_value(Login {
            csrf_token: String::new(),
            expires_at: String::new(),
            expires_in: 0,
            role: String::new(),
            token: String::new(),
            token_type: String::new(),
            user: String::new(),
        })
        .expect("serialises");
        let fields: Vec<&str> = sample
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(props, fields);
    }
}
