//! Who may call what, enforced for every route by one middleware over one table.
//!
//! - [`ROUTES`] is the access table: one row per `(method, route pattern)` as written in
//!   `.route(…)`. [`required`] looks a request up in it; a routed request without a row is
//!   refused (403 `no_access_rule`), so a new route is closed until it gets a row.
//! - [`enforce`] (a `route_layer`, so it sees the matched pattern and leaves 404/405 to axum)
//!   authenticates the caller, checks the row, CSRF for cookie sessions, applies the request
//!   timeout, counts the request for `/metrics`, strips `?token=` from the URI, and puts the
//!   [`Actor`] in the request extensions.
//! - `POST /api/auth/login`, `POST /api/auth/logout`, `GET /api/auth/me`.
//!
//! Credentials, in this order: `Authorization: Bearer <jwt | NAME.SECRET>`; `?token=` on the
//! SSE streams only; the `vigil_session` cookie (unsafe methods then need `X-CSRF-Token`).
//! Without `[auth]` every route is open and the actor is `local` (an admin): the daemon then
//! refuses to listen on anything but loopback. See docs/security.md.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::Value;

pub use crate::auth::Role;
use crate::auth::{Auth, AuthError, Kind, Principal};

use super::{ActorName, ApiError, AppState};

/// The authenticated caller, in the request extensions of every authorized request
/// (`Extension<Actor>`; on public routes `Option<Extension<Actor>>`, absent for anonymous
/// callers). Changes record `name` as their actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub role: Role,
}

impl Actor {
    /// The actor name used when authentication is not configured (loopback-only mode).
    pub const LOCAL: &'static str = "local";

    /// The actor of every request when `[auth]` is absent: everything is allowed.
    pub fn local() -> Actor {
        Actor {
            name: Actor::LOCAL.to_string(),
            role: Role::Admin,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Host resource figures (CPU, RAM, load) are for admins only (seed 004).
    pub fn sees_host_resources(&self) -> bool {
        self.is_admin()
    }

    /// Admins see every job; others only the jobs they submitted (seed 004).
    pub fn sees_job_of(&self, owner: &str) -> bool {
        self.is_admin() || self.name == owner
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name, self.role)
    }
}

/// Remove host resource figures from a payload for non-admins: the `resources` key at the top
/// level and under `data` (the shapes of seed 004's `/api/system/resources` and task events).
/// Returns whether the caller may see them (e.g. to set `is_admin` in the payload).
pub fn strip_host_resources(actor: Option<&Actor>, v: &mut Value) -> bool {
    let allowed = actor.is_some_and(Actor::sees_host_resources);
    if !allowed && let Some(o) = v.as_object_mut() {
        o.remove("resources");
        if let Some(d) = o.get_mut("data").and_then(Value::as_object_mut) {
            d.remove("resources");
        }
    }
    allowed
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone. A valid credential, if sent, still makes the [`Actor`] available.
    Public,
    /// Any valid credential, `ingest` included.
    Authenticated,
    /// At least this role in `viewer < operator < admin` (`ingest` never qualifies).
    Role(Role),
    /// Posting events: `ingest` tokens and admins.
    Ingest,
    /// `GET /metrics`: `[auth] metrics_role` (default viewer; `"public"` = anyone).
    Metrics,
    /// Authenticated by the route itself (supervisord's HTTP basic auth on `/RPC2` and
    /// `/logtail/…`); the JWT layer stays out of it.
    Delegated,
    /// No row in the table: refused.
    Deny,
}

/// How a route's response is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// A plain response, under the request timeout.
    Plain,
    /// Server-Sent Events: the only routes that accept `?token=` (EventSource cannot send
    /// headers).
    Sse,
    /// A streamed body (e.g. `?follow=true` logs); no query token.
    Stream,
}

/// One row of the access table.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub method: &'static str,
    /// The route pattern exactly as passed to `.route(…)`; a trailing `*` matches a prefix.
    pub path: &'static str,
    pub access: Access,
    pub delivery: Delivery,
}

const fn row(method: &'static str, path: &'static str, access: Access) -> Rule {
    Rule {
        method,
        path,
        access,
        delivery: Delivery::Plain,
    }
}

const fn sse(path: &'static str, access: Access) -> Rule {
    Rule {
        method: "GET",
        path,
        access,
        delivery: Delivery::Sse,
    }
}

const fn stream(path: &'static str, access: Access) -> Rule {
    Rule {
        method: "GET",
        path,
        access,
        delivery: Delivery::Stream,
    }
}

const VIEWER: Access = Access::Role(Role::Viewer);
const OPERATOR: Access = Access::Role(Role::Operator);
const ADMIN: Access = Access::Role(Role::Admin);

/// THE access table. Every route of the router has exactly one row here (a test checks the
/// source, another the running daemon); rows of routes not (yet) served are harmless.
/// Adding a route = adding a row (and its OpenAPI entry in `api::openapi`).
pub const ROUTES: &[Rule] = &[
    row("GET", "/", Access::Public),
    row("GET", "/assets/{file}", Access::Public),
    row("GET", "/health", Access::Public),
    row("GET", "/metrics", Access::Metrics),
    row("GET", "/api/openapi.json", Access::Public),
    row("POST", "/api/auth/login", Access::Public),
    row("POST", "/api/auth/logout", Access::Public),
    row("GET", "/api/auth/me", Access::Authenticated),
    // Trading state: read by everyone, halting by operators, resuming by admins only.
    row("GET", "/api/state", VIEWER),
    row("POST", "/api/trading/halt", OPERATOR),
    row("POST", "/api/trading/resume", ADMIN),
    row("GET", "/api/checks", VIEWER),
    // Venues' dead-man switches: read by everyone, armed and disarmed by admins.
    row("GET", "/api/venues", VIEWER),
    row("POST", "/api/venues/{id}/arm", ADMIN),
    row("POST", "/api/venues/{id}/disarm", ADMIN),
    // Programs.
    row("GET", "/api/programs", VIEWER),
    stream("/api/programs/{name}/log", VIEWER),
    row("POST", "/api/programs/{name}/{action}", OPERATOR),
    // Events.
    row("POST", "/api/events", Access::Ingest),
    row("GET", "/api/events", VIEWER),
    sse("/api/events/stream", VIEWER),
    // The session report over the stored history (`vigil analyze --db`).
    row("GET", "/api/report", VIEWER),
    // Jobs (non-admins see their own only: `Actor::sees_job_of`).
    row("POST", "/api/jobs", OPERATOR),
    row("GET", "/api/jobs", VIEWER),
    row("GET", "/api/jobs/types", VIEWER),
    row("GET", "/api/jobs/{id}", VIEWER),
    row("POST", "/api/jobs/{id}/cancel", OPERATOR),
    stream("/api/jobs/{id}/log", VIEWER),
    // A job's own progress: its job-scoped token (checked by the handler) or its owner.
    row("POST", "/api/jobs/{id}/progress", Access::Public),
    // System (non-admins get no host figures: `strip_host_resources`).
    row("GET", "/api/system/resources", VIEWER),
    row("GET", "/api/system/queue", VIEWER),
    sse("/api/system/task-events", VIEWER),
    // supervisord compatibility: basic auth of its own.
    row("*", "/RPC2", Access::Delegated),
    row("*", "/logtail/*", Access::Delegated),
    row("*", "/mainlogtail", Access::Delegated),
];

/// The row for a method and a route pattern (HEAD is looked up as GET).
pub fn rule(method: &Method, pattern: &str) -> Option<&'static Rule> {
    let m = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    ROUTES.iter().find(|r| {
        (r.method == "*" || r.method == m)
            && match r.path.strip_suffix('*') {
                Some(prefix) => pattern.starts_with(prefix),
                None => r.path == pattern,
            }
    })
}

/// What a request to `pattern` with `method` needs; [`Access::Deny`] without a row.
pub fn required(method: &Method, pattern: &str) -> Access {
    rule(method, pattern).map_or(Access::Deny, |r| r.access)
}

/// Non-streaming requests are cut off after this long (503 `timeout`).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

pub const SESSION_COOKIE: &str = "vigil_session";
pub const CSRF_COOKIE: &str = "vigil_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The client's address (for rate limits), put in the request extensions by [`enforce`].
#[derive(Debug, Clone)]
pub struct ClientAddr(pub String);

fn json_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = super::model::ErrorBody {
        error: code.to_string(),
        message: message.into(),
    };
    (status, Json(body)).into_response()
}

fn unauthorized(message: impl Into<String>) -> Response {
    let mut r = json_error(StatusCode::UNAUTHORIZED, "unauthorized", message);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"vigil\""),
    );
    r
}

fn too_many(wait: Duration) -> Response {
    let secs = wait.as_secs().max(1) + u64::from(wait.subsec_nanos() > 0);
    let mut r = json_error(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many attempts; retry in {secs} s"),
    );
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

fn auth_error(e: AuthError) -> Response {
    match e {
        AuthError::RateLimited(w) => too_many(w),
        e => unauthorized(e.to_string()),
    }
}

/// A credential and where it came from.
enum Credential {
    Bearer(String),
    Query(String),
    Cookie(String),
}

impl Credential {
    fn token(&self) -> &str {
        match self {
            Credential::Bearer(t) | Credential::Query(t) | Credential::Cookie(t) => t,
        }
    }
}

/// A `?token=` taken out of the URI by [`strip_query_token`].
#[derive(Clone)]
struct QueryToken(String);

/// The outermost layer: move `?token=` out of the URI into an extension before any other layer,
/// the fallback or a handler sees the request, so no log of URIs can contain it.
async fn strip_query_token(mut req: Request) -> Request {
    if let Some(t) = take_query_token(req.uri_mut()) {
        req.extensions_mut().insert(QueryToken(t));
    }
    req
}

/// Remove every `token=` parameter from the URI (so nothing downstream, logs included, ever
/// sees it) and return the first one, percent-decoded.
fn take_query_token(uri: &mut Uri) -> Option<String> {
    let q = uri.query()?;
    let mut token = None;
    let mut kept = Vec::new();
    let mut found = false;
    for part in q.split('&') {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        if percent_decode(k) == "token" {
            found = true;
            if token.is_none() {
                token = Some(percent_decode(v));
            }
        } else {
            kept.push(part);
        }
    }
    if !found {
        return None;
    }
    let path = uri.path();
    let pq = if kept.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", kept.join("&"))
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = pq.parse().ok();
    if let Ok(u) = Uri::from_parts(parts) {
        *uri = u;
    }
    token
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let h = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match h {
                    Some(x) => {
                        out.push(x);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            _ => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// Why the request carries no usable credential, or the credential.
fn credential(
    headers: &HeaderMap,
    query: Option<String>,
    delivery: Delivery,
) -> Result<Option<Credential>, String> {
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let s = v.to_str().unwrap_or("");
        let (scheme, rest) = s.trim().split_once(' ').unwrap_or((s, ""));
        if !scheme.eq_ignore_ascii_case("bearer") || rest.trim().is_empty() {
            return Err("Authorization: expected \"Bearer <token>\"".to_string());
        }
        return Ok(Some(Credential::Bearer(rest.trim().to_string())));
    }
    if let Some(t) = query {
        if delivery == Delivery::Sse {
            return Ok(Some(Credential::Query(t)));
        }
        return Err(
            "a token in the query string is accepted only on the SSE streams \
             (/api/events/stream, /api/system/task-events); send Authorization: Bearer <token>"
                .to_string(),
        );
    }
    Ok(cookie(headers, SESSION_COOKIE).map(|c| Credential::Cookie(c.to_string())))
}

fn is_safe(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The middleware over every routed request (see the module doc).
pub async fn enforce(State(st): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let pattern = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| req.uri().path().to_string(), |m| m.as_str().to_string());
    let method = req.method().clone();
    // Normally already taken by `strip_query_token` (the outermost layer).
    let query_token = req
        .extensions_mut()
        .remove::<QueryToken>()
        .map(|t| t.0)
        .or_else(|| take_query_token(req.uri_mut()));
    let addr = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.ip().to_string());
    req.extensions_mut().insert(ClientAddr(addr.clone()));

    let row = rule(&method, &pattern);
    let access = row.map_or(Access::Deny, |r| r.access);
    let delivery = row.map_or(Delivery::Plain, |r| r.delivery);

    let response = match authorize(&st, &mut req, access, delivery, query_token, &addr).await {
        Err(r) => r,
        Ok(()) if delivery == Delivery::Plain => {
            match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
                Ok(r) => r,
                Err(_) => json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "timeout",
                    format!("no response within {} s", REQUEST_TIMEOUT.as_secs()),
                ),
            }
        }
        Ok(()) => next.run(req).await,
    };
    super::metrics::count_request(
        method.as_str(),
        &pattern,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Decide; on success the request carries the [`Actor`] (and the [`Principal`]).
async fn authorize(
    st: &AppState,
    req: &mut Request,
    access: Access,
    delivery: Delivery,
    query_token: Option<String>,
    addr: &str,
) -> Result<(), Response> {
    if access == Access::Deny {
        tracing::error!(method = %req.method(), route = %req.extensions().get::<MatchedPath>().map_or("?", |m| m.as_str()), "route has no row in api::auth::ROUTES; refused");
        return Err(json_error(
            StatusCode::FORBIDDEN,
            "no_access_rule",
            "this route has no access rule (api::auth::ROUTES); refused",
        ));
    }
    if access == Access::Delegated {
        return Ok(());
    }
    let Some(auth) = &st.auth else {
        insert_actor(req, Actor::local(), None);
        return Ok(());
    };
    let access = match access {
        Access::Metrics => match auth.active().config.metrics_role {
            None => Access::Public,
            Some(r) => Access::Role(r),
        },
        a => a,
    };
    let cred = credential(req.headers(), query_token, delivery);
    if access == Access::Public {
        // Anonymous is fine; a valid credential still identifies the caller.
        if let Ok(Some(c)) = cred
            && let Ok(p) = auth.authenticate(c.token(), addr).await
        {
            let actor = Actor {
                name: p.name.clone(),
                role: p.role,
            };
            insert_actor(req, actor, Some(p));
        }
        return Ok(());
    }
    let cred = match cred {
        Ok(Some(c)) => c,
        Ok(None) => return Err(unauthorized(AuthError::Missing.to_string())),
        Err(msg) => return Err(unauthorized(msg)),
    };
    let p = auth
        .authenticate(cred.token(), addr)
        .await
        .map_err(auth_error)?;
    if let Credential::Cookie(_) = cred {
        csrf_check(auth, req, &p).map_err(|m| json_error(StatusCode::FORBIDDEN, "csrf", m))?;
    }
    let allowed = match access {
        Access::Authenticated => true,
        Access::Role(min) => p.role.at_least(min),
        Access::Ingest => p.role.may_ingest(),
        Access::Public | Access::Metrics | Access::Delegated | Access::Deny => false,
    };
    if !allowed {
        let need = match access {
            Access::Role(min) => format!("role {min} or higher"),
            Access::Ingest => "role ingest or admin".to_string(),
            _ => "another role".to_string(),
        };
        return Err(json_error(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("{} has role {}; this needs {need}", p.name, p.role),
        ));
    }
    let actor = Actor {
        name: p.name.clone(),
        role: p.role,
    };
    insert_actor(req, actor, Some(p));
    Ok(())
}

/// Cookie sessions: refuse cross-site requests, and unsafe methods without the session's
/// CSRF token in `X-CSRF-Token` (the login response and the `vigil_csrf` cookie carry it).
fn csrf_check(auth: &Auth, req: &Request, p: &Principal) -> Result<(), &'static str> {
    let h = req.headers();
    if h.get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("cross-site"))
    {
        return Err("cross-site request with a session cookie refused");
    }
    if is_safe(req.method()) {
        return Ok(());
    }
    let presented = h
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match &p.jti {
        Some(jti) if auth.csrf_ok(jti, presented) => Ok(()),
        _ => Err(
            "a request authenticated by the session cookie needs the X-CSRF-Token header \
             (the csrf_token of the login response, also in the vigil_csrf cookie)",
        ),
    }
}

fn insert_actor(req: &mut Request, actor: Actor, p: Option<Principal>) {
    let ext = req.extensions_mut();
    ext.insert(ActorName(actor.name.clone()));
    ext.insert(actor);
    if let Some(p) = p {
        ext.insert(p);
    }
}

/// `/api/auth/*`.
pub fn routes() -> axum::Router<Arc<AppState>> {
    axum::Router::new()
        .route("/api/auth/login", post(login))
        .route("/api/auth/logout", post(logout))
        .route("/api/auth/me", get(me))
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

fn set_cookie(r: &mut Response, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

async fn login(
    State(st): State<Arc<AppState>>,
    ext: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let Some(auth) = &st.auth else {
        return json_error(
            StatusCode::NOT_FOUND,
            "auth_not_configured",
            "authentication is not configured (no [auth] in the config): every route is open on loopback",
        );
    };
    let b: LoginBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return ApiError::bad_request(format!(
                "body: expected {{\"username\": …, \"password\": …}}: {e}"
            ))
            .into_response();
        }
    };
    if b.username.len() > 256 || b.password.len() > 4096 {
        return ApiError::bad_request("username or password too long").into_response();
    }
    let addr = ext
        .get::<ClientAddr>()
        .map_or_else(|| "unknown".to_string(), |a| a.0.clone());
    let user_key = format!("login-user:{}", b.username);
    if let Err(w) = auth.take(&format!("login-addr:{addr}")) {
        tracing::warn!(user = %b.username, %addr, "login rate-limited (address)");
        return too_many(w);
    }
    if let Err(w) = auth.peek(&user_key) {
        tracing::warn!(user = %b.username, %addr, "login rate-limited (user)");
        return too_many(w);
    }
    let Some(p) = auth.check_password(&b.username, &b.password).await else {
        let _ = auth.take(&user_key);
        tracing::warn!(user = %b.username, %addr, "login failed");
        return unauthorized("invalid user name or password");
    };
    let (token, claims) = match auth.issue(&p.name, p.role) {
        Ok(t) => t,
        Err(e) => {
            return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "token", e.to_string())
                .into_response();
        }
    };
    tracing::info!(user = %p.name, role = %p.role, %addr, "login");
    let active = auth.active();
    let ttl = active.config.token_ttl.as_secs();
    let secure = if active.config.cookie_secure {
        "; Secure"
    } else {
        ""
    };
    let csrf = auth.csrf_token(&claims.jti);
    let mut r = Json(super::model::session::Login {
        csrf_token: csrf.clone(),
        expires_at: rfc3339(claims.exp),
        expires_in: ttl,
        role: p.role.name().to_string(),
        token: token.clone(),
        token_type: "Bearer".into(),
        user: p.name.clone(),
    })
    .into_response();
    set_cookie(
        &mut r,
        format!(
            "{SESSION_COOKIE}={token}; Path=/; Max-Age={ttl}; HttpOnly; SameSite=Strict{secure}"
        ),
    );
    set_cookie(
        &mut r,
        format!("{CSRF_COOKIE}={csrf}; Path=/; Max-Age={ttl}; SameSite=Strict{secure}"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Clears the session cookies (JWTs themselves stay valid until they expire).
async fn logout(State(st): State<Arc<AppState>>) -> Response {
    let secure = st
        .auth
        .as_ref()
        .is_some_and(|a| a.active().config.cookie_secure);
    let secure = if secure { "; Secure" } else { "" };
    let mut r = StatusCode::NO_CONTENT.into_response();
    for c in [SESSION_COOKIE, CSRF_COOKIE] {
        set_cookie(
            &mut r,
            format!("{c}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{secure}"),
        );
    }
    r
}

async fn me(State(st): State<Arc<AppState>>, ext: axum::http::Extensions) -> Response {
    let actor = ext.get::<Actor>().cloned().unwrap_or_else(Actor::local);
    let p = ext.get::<Principal>();
    let csrf = match (&st.auth, p.and_then(|p| p.jti.as_deref())) {
        (Some(a), Some(jti)) => Some(a.csrf_token(jti)),
        _ => None,
    };
    Json(super::model::session::Me {
        auth_enabled: st.auth.is_some(),
        csrf_token: csrf,
        expires_at: p.and_then(|p| p.expires_at).map(rfc3339),
        kind: p
            .map(|p| p.kind)
            .map_or("local", |k| match k {
                Kind::User => "user",
                Kind::Token => "token",
            })
            .to_string(),
        name: actor.name,
        role: actor.role.name().to_string(),
    })
    .into_response()
}

fn rfc3339(unix: u64) -> String {
    i64::try_from(unix)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// The security headers of every response. The CSP fits the Status Center page (scripts and
/// styles from files of its own origin); a handler that sets its own keeps it.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
         connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
];

/// The router with the access middleware, the fallback, body limit, security headers and
/// (when configured) CORS. `routes` must hold every route: the middleware is a `route_layer`
/// and covers only routes present when it is applied. A request log (e.g. tower-http's
/// `TraceLayer`) belongs in here, inside the outermost layer that strips `?token=`.
/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub fn protect(routes: axum::Router<Arc<AppState>>, state: Arc<AppState>) -> axum::Router {
    use tower_http::set_header::SetResponseHeaderLayer;
    let cors = state
        .auth
        .as_ref()
        .map(|a| a.active().config.cors_origins.clone())
        .unwrap_or_default();
    let mut app = routes
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), enforce))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            MAX_BODY_BYTES,
        ))
        .with_state(state);
    for (name, value) in SECURITY_HEADERS {
        app = app.layer(SetResponseHeaderLayer::if_not_present(
            header::HeaderName::from_static(name),
            HeaderValue::from_static(value),
        ));
    }
    if !cors.is_empty() {
        let origins: Vec<HeaderValue> = cors
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        app = app.layer(
            tower_http::cors::CorsLayer::new()
                .allow_origin(origins)
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    header::HeaderName::from_static(CSRF_HEADER),
                    header::HeaderName::from_static("last-event-id"),
                ])
                .max_age(Duration::from_secs(600)),
        );
    }
    // Outermost: nothing (not even a request log added here) sees `?token=`.
    app.layer(axum::middleware::map_request(strip_query_token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_lookup() {
        assert_eq!(required(&Method::GET, "/health"), Access::Public);
        assert_eq!(required(&Method::HEAD, "/api/state"), VIEWER);
        assert_eq!(required(&Method::POST, "/api/trading/halt"), OPERATOR);
        assert_eq!(required(&Method::POST, "/api/trading/resume"), ADMIN);
        assert_eq!(required(&Method::POST, "/api/events"), Access::Ingest);
        assert_eq!(required(&Method::GET, "/api/events"), VIEWER);
        assert_eq!(required(&Method::POST, "/RPC2"), Access::Delegated);
        assert_eq!(required(&Method::GET, "/logtail/{name}"), Access::Delegated);
        assert_eq!(required(&Method::DELETE, "/api/state"), Access::Deny);
        assert_eq!(required(&Method::GET, "/api/nope"), Access::Deny);
    }

    #[test]
    fn table_has_no_duplicates() {
        let mut seen = std::collections::HashSet::new();
        for r in ROUTES {
            assert!(
                seen.insert((r.method, r.path)),
                "duplicate row {} {}",
                r.method,
                r.path
            );
        }
    }

    #[test]
    fn query_token_is_stripped() {
        let mut u: Uri = "/api/events/stream?since=3&token=a.b.c&type=x"
            .parse()
            .expect("uri");
        assert_eq!(take_query_token(&mut u).as_deref(), Some("a.b.c"));
        assert_eq!(u.to_string(), "/api/events/stream?since=3&type=x");
        let mut u: Uri = "/x?token=abc%2Edef".parse().expect("uri");
        assert_eq!(take_query_token(&mut u).as_deref(), Some("abc.def"));
        assert_eq!(u.to_string(), "/x");
        let mut u: Uri = "/x?a=1".parse().expect("uri");
        assert_eq!(take_query_token(&mut u), None);
        assert_eq!(u.to_string(), "/x?a=1");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn credentials() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; vigil_session=t.o.k"),
        );
        assert!(
            matches!(credential(&h, None, Delivery::Plain), Ok(Some(Credential::Cookie(t))) if t == "t.o.k")
        );
        assert!(credential(&h, Some("q".into()), Delivery::Plain).is_err());
        assert!(matches!(
            credential(&h, Some("q".into()), Delivery::Sse),
            Ok(Some(Credential::Query(_)))
        ));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert!(credential(&h, None, Delivery::Plain).is_err());
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  x.y "),
        );
        assert!(
            matches!(credential(&h, None, Delivery::Plain), Ok(Some(Credential::Bearer(t))) if t == "x.y")
        );
    }

    #[test]
    fn host_resources_are_admin_only() {
        use serde_json::json;
        let v =
            json!({"resources": {"cpu": 1}, "data": {"resources": 2, "task_id": "a"}, "queue": []});
        let viewer = Actor {
            name: "v".into(),
            role: Role::Viewer,
        };
        let mut w = v.clone();
        assert!(!strip_host_resources(Some(&viewer), &mut w));
        assert_eq!(w, json!({"data": {"task_id": "a"}, "queue": []}));
        let mut w = v.clone();
        assert!(strip_host_resources(Some(&Actor::local()), &mut w));
        assert_eq!(w, v);
        assert!(viewer.sees_job_of("v") && !viewer.sees_job_of("w"));
    }
}
