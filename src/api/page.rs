//! `GET /` and `GET /assets/{file}`: the Status Center page (issue 11).
//!
//! The page is plain HTML, CSS and ES modules in `src/api/page/`, built into the binary with
//! `include_bytes!` (no Node at build or run time, nothing vendored). Each asset is gzipped
//! once, on first use, and served with a strong `ETag` (SHA-256 of its bytes) and
//! `Cache-Control: no-cache`, so a browser revalidates with `If-None-Match` and gets a 304
//! after an upgrade never stale code. The page's own CSP allows nothing from outside its
//! origin (no inline script or style either).

use std::io::Write;
use std::sync::{Arc, OnceLock};

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use super::{ApiError, AppState};

/// The page's Content-Security-Policy: only its own origin, for everything.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; font-src 'none'; object-src 'none'; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// `(name, content type, bytes)` of every asset; `index.html` is served at `/`.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("page/index.html"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("page/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("page/app.js"),
    ),
    (
        "ui.js",
        "text/javascript; charset=utf-8",
        include_bytes!("page/ui.js"),
    ),
    (
        "jobs.js",
        "text/javascript; charset=utf-8",
        include_bytes!("page/jobs.js"),
    ),
];

struct Asset {
    name: &'static str,
    mime: &'static str,
    raw: &'static [u8],
    gzip: Vec<u8>,
    etag: String,
}

fn assets() -> &'static [Asset] {
    static ASSETS: OnceLock<Vec<Asset>> = OnceLock::new();
    ASSETS.get_or_init(|| {
        FILES
            .iter()
            .map(|&(name, mime, raw)| {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                // Writing to a Vec cannot fail; fall back to no compression if it ever did.
                let gzip = gz
                    .write_all(raw)
                    .and_then(|()| gz.finish())
                    .unwrap_or_default();
                let digest = Sha256::digest(raw);
                let etag = format!(
                    "\"{}\"",
                    digest
                        .iter()
                        .take(12)
                        .map(|b| format!("{b:02x}"))
                        .collect::<String>()
                );
                Asset {
                    name,
                    mime,
                    raw,
                    gzip,
                    etag,
                }
            })
            .collect()
    })
}

/// Total bytes of the page as a browser transfers it (every asset gzipped), for the benchmark.
pub fn transfer_size() -> (usize, usize) {
    assets().iter().fold((0, 0), |(raw, gz), a| {
        (raw + a.raw.len(), gz + a.gzip.len())
    })
}

pub fn routes() -> axum::Router<Arc<AppState>> {
    axum::Router::new()
        .route("/", get(index))
        .route("/assets/{file}", get(asset))
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers).unwrap_or_else(IntoResponse::into_response)
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    if file == "index.html" {
        return not_found(&file).into_response();
    }
    serve(&file, &headers).unwrap_or_else(IntoResponse::into_response)
}

fn not_found(file: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no such asset: {file:?}"),
    )
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|enc| {
            let mut parts = enc.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

fn serve(name: &str, headers: &HeaderMap) -> Result<Response, ApiError> {
    let a = assets()
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(|| not_found(name))?;
    let fresh = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            let t = t.trim();
            t == "*" || t.trim_start_matches("W/") == a.etag
        });
    let gzip = !a.gzip.is_empty() && accepts_gzip(headers);
    let mut r = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else if gzip {
        let mut r = a.gzip.clone().into_response();
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        a.raw.into_response()
    };
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.mime));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if let Ok(v) = HeaderValue::from_str(&a.etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdrs(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn gzip_negotiation() {
        assert!(accepts_gzip(&hdrs(&[(
            "accept-encoding",
            "gzip, deflate, br"
        )])));
        assert!(accepts_gzip(&hdrs(&[(
            "accept-encoding",
            "br;q=1, gzip;q=0.5"
        )])));
        assert!(!accepts_gzip(&hdrs(&[("accept-encoding", "gzip;q=0")])));
        assert!(!accepts_gzip(&hdrs(&[("accept-encoding", "br")])));
        assert!(!accepts_gzip(&hdrs(&[])));
    }

    #[test]
    fn assets_compress_and_revalidate() {
        let (raw, gz) = transfer_size();
        assert!(gz > 0 && gz < raw, "gzip {gz} of {raw}");
        let r = serve("app.js", &hdrs(&[("accept-encoding", "gzip")])).expect("served");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CONTENT_ENCODING], "gzip");
        let etag = r.headers()[header::ETAG]
            .to_str()
            .expect("etag")
            .to_string();
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&etag).expect("v"),
        );
        let r = serve("app.js", &h).expect("served");
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert!(serve("nope.js", &h).is_err());
        // Every module the page imports is served.
        for (name, _, bytes) in FILES {
            let text = std::str::from_utf8(bytes).expect("utf-8");
            for imp in text.split("from \"./").skip(1) {
                let file = imp.split('"').next().unwrap_or("");
                assert!(
                    FILES.iter().any(|(n, _, _)| *n == file),
                    "{name} imports ./{file}, which is not served"
                );
            }
        }
    }
}
