//! `GET /api/openapi.json`: the REST API as an OpenAPI 3.0 document, written by hand here and
//! completed from the access table (`security` and `x-vigil-access` of every operation come
//! from `api::auth::ROUTES`, so the document cannot disagree with what is enforced).
//!
//! Kept true by tests: every `.route(…)` in `src/` has a row in the access table and an
//! operation here (except the supervisord routes, which are not REST), and every operation
//! here is routed. Adding a route = a row in `ROUTES` + an entry in [`operations`].

use std::sync::{Arc, OnceLock};

use axum::Json;
use axum::routing::get;
use serde_json::{Value, json};

use super::AppState;
use super::auth::{Access, Delivery, rule};

/// `(method, path, operation)` for every documented operation.
pub fn operations() -> Vec<(&'static str, &'static str, Value)> {
    let ok_json = |d: &str| json!({"description": d, "content": {"application/json": {"schema": {"type": "object"}}}});
    let err = |d: &str| json!({"description": d, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let name = json!({"name": "name", "in": "path", "required": true, "description": "process name, `group:name`, `group:*` or `all`", "schema": {"type": "string"}});
    let reason_body = |extra: Value| {
        let mut props = json!({"reason": {"type": "string", "minLength": 1}});
        if let (Some(p), Some(e)) = (props.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        json!({"required": true, "content": {"application/json": {"schema": {
            "type": "object", "required": ["reason"], "additionalProperties": false, "properties": props}}}})
    };
    vec![
        (
            "get",
            "/",
            json!({
            "summary": "The Status Center web page (gzip, ETag; its assets under /assets/)",
            "responses": {"200": {"description": "the page", "content": {"text/html": {"schema": {"type": "string"}}}},
                          "304": {"description": "not modified (If-None-Match)"}}}),
        ),
        (
            "get",
            "/assets/{file}",
            json!({
            "summary": "A script or style sheet of the Status Center page",
            "parameters": [{"name": "file", "in": "path", "required": true, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "the asset", "content": {"text/javascript": {"schema": {"type": "string"}}, "text/css": {"schema": {"type": "string"}}}},
                          "304": {"description": "not modified (If-None-Match)"}, "404": err("no such asset")}}),
        ),
        (
            "get",
            "/api/jobs/types",
            json!({
            "summary": "The configured job types: resources, priority, and the parameters of their argv templates (what POST /api/jobs accepts as type and params)",
            "responses": {"200": ok_json("job types")}}),
        ),
        (
            "get",
            "/health",
            json!({
            "summary": "Overall status, each program's status and last error; stderr tails only for authenticated callers (or without [auth])",
            "responses": {"200": ok_json("health")}}),
        ),
        (
            "get",
            "/metrics",
            json!({
            "summary": "Prometheus text exposition (format 0.0.4)",
            "responses": {"200": {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}}}),
        ),
        (
            "get",
            "/api/openapi.json",
            json!({
            "summary": "This document",
            "responses": {"200": ok_json("OpenAPI 3 document")}}),
        ),
        (
            "post",
            "/api/auth/login",
            json!({
            "summary": "Log in: a JWT (Bearer), plus HttpOnly session and CSRF cookies for browsers",
            "security": [],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {
                "type": "object", "required": ["username", "password"],
                "properties": {"username": {"type": "string"}, "password": {"type": "string"}}}}}},
            "responses": {
                "200": {"description": "logged in", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Login"}}}},
                "400": err("malformed body"), "401": err("invalid user name or password"),
                "404": err("authentication is not configured"), "429": err("too many attempts (Retry-After)")}}),
        ),
        (
            "post",
            "/api/auth/logout",
            json!({
            "summary": "Clear the session cookies",
            "responses": {"204": {"description": "cookies cleared"}}}),
        ),
        (
            "get",
            "/api/auth/me",
            json!({
            "summary": "Who the caller is: name, role, token kind and expiry, the session's CSRF token",
            "responses": {"200": ok_json("the caller")}}),
        ),
        (
            "get",
            "/api/state",
            json!({
            "summary": "Trading state (ACTIVE, REDUCING, HALTED), since when, why, what holds it",
            "responses": {"200": ok_json("trading state")}}),
        ),
        (
            "post",
            "/api/trading/halt",
            json!({
            "summary": "Halt trading (or reduce only); records the actor",
            "requestBody": reason_body(json!({"reduce_only": {"type": "boolean"}})),
            "responses": {"200": ok_json("state after the halt"), "400": err("invalid body")}}),
        ),
        (
            "post",
            "/api/trading/resume",
            json!({
            "summary": "Resume trading; refused while a triggering condition holds unless forced; records the actor",
            "requestBody": reason_body(json!({"force": {"type": "boolean"}})),
            "responses": {"200": ok_json("state after the resume"), "400": err("invalid body"),
                          "409": err("conditions still hold, or already active")}}),
        ),
        (
            "get",
            "/api/checks",
            json!({
            "summary": "Checks and rules with their latest values; ingest counters",
            "responses": {"200": ok_json("checks")}}),
        ),
        (
            "get",
            "/api/venues",
            json!({
            "summary": "Venues with their dead-man switch: armed, trigger time, last refresh (and clock skew), last cancel-all and its result, the check; the close watch after a close halt",
            "responses": {"200": ok_json("venues")}}),
        ),
        (
            "post",
            "/api/venues/{id}/arm",
            json!({
            "summary": "Arm the venue's dead-man switch again (lifts a disarm); refused while HALTED; recorded as a venue event",
            "parameters": [{"name": "id", "in": "path", "required": true, "description": "the venue id ([venue.ID])", "schema": {"type": "string"}}],
            "requestBody": reason_body(json!({})),
            "responses": {"200": ok_json("the venue"), "400": err("invalid body"), "404": err("no such venue"),
                          "409": err("trading is HALTED, or deadman_timeout_s is 0")}}),
        ),
        (
            "post",
            "/api/venues/{id}/disarm",
            json!({
            "summary": "Disarm the venue's dead-man switch (before an exchange maintenance) until an arm or the next transition to ACTIVE; recorded as a venue event",
            "parameters": [{"name": "id", "in": "path", "required": true, "description": "the venue id ([venue.ID])", "schema": {"type": "string"}}],
            "requestBody": reason_body(json!({})),
            "responses": {"200": ok_json("the venue"), "400": err("invalid body"), "404": err("no such venue")}}),
        ),
        (
            "get",
            "/api/programs",
            json!({
            "summary": "Every process with its state",
            "responses": {"200": ok_json("processes")}}),
        ),
        (
            "get",
            "/api/programs/{name}/log",
            json!({
            "summary": "The end of a process's output; with follow=true a chunked text stream",
            "parameters": [name,
                {"name": "channel", "in": "query", "schema": {"type": "string", "enum": ["stdout", "stderr"]}},
                {"name": "lines", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 100000}},
                {"name": "follow", "in": "query", "schema": {"type": "boolean"}}],
            "responses": {"200": ok_json("lines"), "400": err("bad channel"), "404": err("no such process")}}),
        ),
        (
            "post",
            "/api/programs/{name}/{action}",
            json!({
            "summary": "start, stop, restart or signal processes; records the actor",
            "parameters": [name,
                {"name": "action", "in": "path", "required": true, "schema": {"type": "string", "enum": ["start", "stop", "restart", "signal"]}},
                {"name": "wait", "in": "query", "schema": {"type": "boolean"}},
                {"name": "signal", "in": "query", "schema": {"type": "string"}}],
            "responses": {"200": ok_json("results"), "400": err("bad signal"), "404": err("no such process"),
                          "409": err("some action failed")}}),
        ),
        (
            "post",
            "/api/events",
            json!({
            "summary": "Events in: one JSON object, or NDJSON; invalid lines are listed, valid ones accepted",
            "requestBody": {"required": true, "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/InboundEvent"}},
                "application/x-ndjson": {"schema": {"type": "string"}}}},
            "responses": {"202": ok_json("accepted"), "400": err("some events refused")}}),
        ),
        (
            "get",
            "/api/events",
            json!({
            "summary": "Stored events after a seq, oldest first",
            "parameters": [
                {"name": "since", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                {"name": "type", "in": "query", "schema": {"type": "string"}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 10000}},
                {"name": "last", "in": "query", "description": "the last N events instead (oldest first)", "schema": {"type": "integer", "minimum": 1, "maximum": 10000}}],
            "responses": {"200": ok_json("events"), "400": err("bad query")}}),
        ),
        (
            "get",
            "/api/events/stream",
            json!({
            "summary": "Server-Sent Events; id is seq; Last-Event-ID or since resumes without loss. Accepts ?token=",
            "parameters": [
                {"name": "since", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                {"name": "type", "in": "query", "schema": {"type": "string"}},
                {"name": "token", "in": "query", "description": "a bearer token, for EventSource (SSE routes only)", "schema": {"type": "string"}},
                {"name": "ping", "in": "query", "description": "seconds between `event: ping` frames (1–60), for liveness", "schema": {"type": "integer", "minimum": 1, "maximum": 60}},
                {"name": "Last-Event-ID", "in": "header", "schema": {"type": "string"}}],
            "responses": {"200": {"description": "event stream", "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                          "400": err("bad Last-Event-ID")}}),
        ),
        (
            "get",
            "/api/report",
            json!({
            "summary": "The session report (vigil analyze) over the stored history; JSON schema vigil.report/1 (docs/analyze.md)",
            "parameters": [
                {"name": "since", "in": "query", "description": "RFC 3339 or Unix ms", "schema": {"type": "string"}},
                {"name": "until", "in": "query", "description": "RFC 3339 or Unix ms", "schema": {"type": "string"}},
                {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "html", "md"], "default": "json"}},
                {"name": "heartbeat_timeout", "in": "query", "description": "seconds, for every source", "schema": {"type": "number", "minimum": 0.001}}],
            "responses": {"200": {"description": "the report", "content": {
                "application/json": {"schema": {"type": "object", "required": ["schema", "session", "errors", "cycles", "heartbeats", "trading", "findings"]}},
                "text/html": {"schema": {"type": "string"}},
                "text/markdown": {"schema": {"type": "string"}}}},
                          "400": err("bad query")}}),
        ),
    ]
    .into_iter()
    .chain(super::jobs::operations())
    .collect()
}

/// The document (built once).
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(build)
}

fn build() -> Value {
    let mut paths = serde_json::Map::new();
    for (method, path, mut op) in operations() {
        let r = rule(
            &method.to_ascii_uppercase().parse().unwrap_or_default(),
            path,
        );
        let access = r.map_or(Access::Deny, |r| r.access);
        if let Some(o) = op.as_object_mut() {
            let (security, label) = match access {
                Access::Public => (json!([]), "public".to_string()),
                Access::Role(min) => (json!([{"bearer": []}, {"cookie": []}]), format!("{min}+")),
                Access::Ingest => (json!([{"bearer": []}]), "ingest|admin".to_string()),
                Access::Authenticated => {
                    (json!([{"bearer": []}, {"cookie": []}]), "any".to_string())
                }
                Access::Metrics => (
                    json!([{"bearer": []}, {}]),
                    "[auth] metrics_role".to_string(),
                ),
                Access::Delegated | Access::Deny => (json!([]), "none".to_string()),
            };
            let mut security = security;
            if r.is_some_and(|r| r.delivery == Delivery::Sse)
                && let Some(a) = security.as_array_mut()
            {
                a.push(json!({"query_token": []}));
            }
            o.entry("security").or_insert(security);
            o.insert("x-vigil-access".into(), json!(label));
            o.insert(
                "operationId".into(),
                json!(format!(
                    "{method}{}",
                    path.replace(['/', '{', '}', '.', '-'], "_")
                )),
            );
            if !matches!(access, Access::Public)
                && let Some(resp) = o.get_mut("responses").and_then(Value::as_object_mut)
            {
                let error = json!({"$ref": "#/components/schemas/Error"});
                resp.entry("401").or_insert(json!({"description": "missing, invalid or expired credentials", "content": {"application/json": {"schema": error}}}));
                resp.entry("403").or_insert(json!({"description": "the caller's role may not do this", "content": {"application/json": {"schema": error}}}));
            }
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        if let Some(e) = entry.as_object_mut() {
            e.insert(method.to_string(), op);
        }
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "vigil",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Process supervisor and trading kill switch. Errors are {\"error\": code, \"message\": text}. \
                Roles: admin > operator > viewer; ingest may only post events. Without [auth] in the config \
                everything is open and vigil listens on loopback only. See docs/api.md and docs/security.md.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "a JWT from POST /api/auth/login, or a machine token NAME.SECRET"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "vigil_session", "description": "browser session; unsafe methods also need the X-CSRF-Token header"},
                "query_token": {"type": "apiKey", "in": "query", "name": "token", "description": "SSE streams only (EventSource cannot send headers)"},
            },
            "schemas": {
                "Error": {"type": "object", "required": ["error", "message"], "properties": {
                    "error": {"type": "string"}, "message": {"type": "string"}}},
                "Login": {"type": "object", "properties": {
                    "token": {"type": "string"}, "token_type": {"type": "string", "enum": ["Bearer"]},
                    "expires_in": {"type": "integer"}, "expires_at": {"type": "string", "format": "date-time"},
                    "user": {"type": "string"}, "role": {"type": "string", "enum": ["admin", "operator", "viewer"]},
                    "csrf_token": {"type": "string"}}},
                "InboundEvent": {"type": "object", "required": ["type"], "properties": {
                    "type": {"type": "string", "enum": ["tick", "fill", "order", "position", "equity", "api_error", "heartbeat", "cycle", "log", "metric"]},
                    "source": {"type": "string"},
                    "ts": {"oneOf": [{"type": "string"}, {"type": "integer"}]}}},
            },
        },
    })
}

async fn openapi() -> Json<Value> {
    Json(document().clone())
}

pub fn routes() -> axum::Router<Arc<AppState>> {
    axum::Router::new().route("/api/openapi.json", get(openapi))
}

/// `(METHOD, path)` of every `.route("path", method(…)…)` call in the given Rust source.
/// `any(…)` gives `*`. Used by the tests that keep the table and this document true.
pub fn routes_in_source(src: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(i) = rest.find(".route(") {
        rest = &rest[i + ".route(".len()..];
        let trimmed = rest.trim_start();
        let Some(lit) = trimmed.strip_prefix('"') else {
            continue;
        };
        let Some(end) = lit.find('"') else { break };
        let path = &lit[..end];
        if !path.starts_with('/') {
            continue;
        }
        // The method-router expression: up to the parenthesis closing `.route(`.
        let after = &lit[end + 1..];
        let mut depth = 1usize;
        let mut stop = after.len();
        for (j, c) in after.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        stop = j;
                        break;
                    }
                }
                _ => {}
            }
        }
        let expr = &after[..stop];
        // Parenthesis depth at each byte: `get(a).post(b)` chains at depth 0; a `.get(` inside
        // a handler closure (depth > 0) is some other method.
        let mut depth_at = Vec::with_capacity(expr.len());
        let mut d = 0usize;
        for b in expr.bytes() {
            depth_at.push(d);
            match b {
                b'(' => d += 1,
                b')' => d = d.saturating_sub(1),
                _ => {}
            }
        }
        for m in [
            "get", "post", "put", "delete", "patch", "head", "options", "any",
        ] {
            let mut from = 0;
            while let Some(k) = expr[from..].find(m) {
                let at = from + k;
                from = at + m.len();
                let before = expr[..at].chars().next_back();
                let next = expr[at + m.len()..].chars().next();
                let chained = before == Some('.') && depth_at.get(at) == Some(&0);
                let free = before.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.'));
                if (chained || free) && next == Some('(') {
                    let method = if m == "any" {
                        "*".to_string()
                    } else {
                        m.to_ascii_uppercase()
                    };
                    out.push((method, path.to_string()));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;

    fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                rust_files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    /// Every route in the router's source ↔ the access table ↔ this document.
    #[test]
    fn routes_table_and_document_agree() {
        let mut files = Vec::new();
        rust_files(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        let mut routed = BTreeSet::new();
        for f in &files {
            let src = std::fs::read_to_string(f).expect("read source");
            // Test modules (at the end of a file) may build throwaway routers.
            let src = src.split("#[cfg(test)]").next().unwrap_or("");
            for (m, p) in routes_in_source(src) {
                routed.insert((m, p, f.display().to_string()));
            }
        }
        assert!(
            routed.len() >= 8,
            "the source scan found too few routes: {routed:?}"
        );
        let documented: BTreeSet<(String, String)> = operations()
            .into_iter()
            .map(|(m, p, _)| (m.to_ascii_uppercase(), p.to_string()))
            .collect();
        let mut problems = Vec::new();
        for (m, p, file) in &routed {
            let method: axum::http::Method = if m == "*" {
                axum::http::Method::POST
            } else {
                m.parse().expect("method")
            };
            match rule(&method, p) {
                None => problems.push(format!(
                    "{m} {p} ({file}) has no row in api::auth::ROUTES (it is refused at run time)"
                )),
                Some(r) if r.access == Access::Delegated => {}
                Some(_) if !documented.contains(&(m.clone(), p.clone())) => problems.push(format!(
                    "{m} {p} ({file}) is not in the OpenAPI document (api::openapi::operations)"
                )),
                Some(_) => {}
            }
        }
        for (m, p) in &documented {
            if !routed.iter().any(|(rm, rp, _)| rm == m && rp == p) {
                problems.push(format!("{m} {p} is documented but no .route(…) serves it"));
            }
            let method: axum::http::Method = m.parse().expect("method");
            if rule(&method, p).is_none() {
                problems.push(format!("{m} {p} is documented but has no row in ROUTES"));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn source_scan() {
        let src = r#"
            Router::new()
                .route("/a", get(a).post(b))
                .route(
                    "/b/{x}",
                    axum::routing::delete(|| async { m.get(1) }),
                )
                .route("/c", any(c))
        "#;
        assert_eq!(
            routes_in_source(src),
            vec![
                ("GET".into(), "/a".into()),
                ("POST".into(), "/a".into()),
                ("DELETE".into(), "/b/{x}".into()),
                ("*".into(), "/c".into()),
            ]
        );
    }

    #[test]
    fn document_is_complete() {
        let d = document();
        assert_eq!(d["openapi"], "3.0.3");
        assert_eq!(
            d["paths"]["/api/trading/resume"]["post"]["x-vigil-access"],
            "admin+"
        );
        assert_eq!(d["paths"]["/health"]["get"]["security"], json!([]));
        assert_eq!(
            d["paths"]["/api/events/stream"]["get"]["security"],
            json!([{"bearer": []}, {"cookie": []}, {"query_token": []}])
        );
        assert!(d["paths"]["/api/state"]["get"]["responses"]["401"].is_object());
    }
}
