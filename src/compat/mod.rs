//! supervisord wire compatibility (issue 3): the XML-RPC interface at `POST /RPC2` and the
//! `GET /logtail/…` / `GET /mainlogtail` streams that `supervisorctl` (and superlance
//! listeners) use, with supervisord's HTTP basic auth. Served on vigil's own listener (merged
//! into the HTTP API's router, outside the REST API's JWT layer), on `[rpc.inet]` when it is
//! another address, and on `[rpc.unix]`'s socket. Reference: `docs/supervisord.md`.

pub mod control;
pub mod groups;
pub mod mainlog;
pub mod methods;
pub mod rpc;
pub mod xmlrpc;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Credentials};
use crate::events::EventLog;
use crate::supervisor::SupervisorHandle;
pub use control::{DaemonControl, DaemonState, DaemonView};

/// Request bodies up to this size (a `sendProcessStdin` payload can be large).
pub const MAX_BODY: usize = 16 * 1024 * 1024;
/// `GET /logtail` starts with this many bytes of the log, as supervisord's `tail_f_producer`.
pub const TAIL_HEAD: u64 = 1024;

/// Who may use a server's compat routes.
#[derive(Clone, Debug)]
pub enum Guard {
    /// No authentication (a loopback listener or a Unix socket without credentials).
    Open,
    /// HTTP basic auth (`[rpc.inet]` / `[rpc.unix]` username and password).
    Basic(Arc<Credentials>),
    /// Refused with this explanation: a non-loopback listener without credentials.
    Refuse(&'static str),
}

impl Guard {
    fn from_auth(auth: Option<&Credentials>) -> Guard {
        match auth {
            Some(c) => Guard::Basic(Arc::new(c.clone())),
            None => Guard::Open,
        }
    }
}

/// Everything the compat routes need; cheap to clone.
#[derive(Clone)]
pub struct Compat {
    pub supervisor: SupervisorHandle,
    pub events: EventLog,
    pub daemon: DaemonControl,
    pub guard: Guard,
}

impl Compat {
    pub fn with_guard(&self, guard: Guard) -> Compat {
        Compat {
            guard,
            ..self.clone()
        }
    }
}

/// The guard of the compat routes on vigil's own listener (`addr`): the credentials of
/// `[rpc.inet]` (else `[rpc.unix]`) when there are any; without credentials open only while
/// the REST API is open too (no `[auth]`, hence loopback), else refused — supervisorctl
/// cannot present the REST API's tokens, and an open /RPC2 would bypass them.
pub fn main_guard(config: &Config, addr: SocketAddr) -> Guard {
    let rpc = config.rpc.as_ref();
    let creds = rpc
        .and_then(|r| r.inet.as_ref())
        .and_then(|i| i.auth.as_ref())
        .or_else(|| {
            rpc.and_then(|r| r.unix.as_ref())
                .and_then(|u| u.auth.as_ref())
        });
    match creds {
        Some(c) => Guard::Basic(Arc::new(c.clone())),
        None if config.auth.is_none() && addr.ip().is_loopback() => Guard::Open,
        None => Guard::Refuse(
            "XML-RPC on this listener needs a username and password: configure them in \
             [rpc.inet] (supervisord's [inet_http_server])",
        ),
    }
}

/// `POST /RPC2`, `GET /logtail/{name}[/{channel}]`, `GET /mainlogtail`, behind `cx.guard`.
pub fn routes(cx: Compat) -> Router {
    Router::new()
        .route("/RPC2", post(rpc2).get(not_post))
        .route("/logtail/{name}", get(logtail_stdout))
        .route("/logtail/{name}/{channel}", get(logtail))
        .route("/mainlogtail", get(mainlogtail))
        .layer(middleware::from_fn_with_state(cx.clone(), basic_auth))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(cx)
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

async fn rpc2(State(cx): State<Compat>, body: Bytes) -> Response {
    let call = match xmlrpc::parse_call(&body) {
        Ok(c) => c,
        Err(e) => {
            // supervisord answers 400 to an unparsable body or a missing <methodName>.
            tracing::warn!("XML-RPC request is invalid: {e}");
            return text(
                StatusCode::BAD_REQUEST,
                format!("XML-RPC request is invalid: {e}\n"),
            );
        }
    };
    tracing::debug!(method = %call.method, "XML-RPC call");
    let body = match rpc::dispatch(&cx, &call.method, call.params).await {
        Ok(v) => xmlrpc::response(&v),
        Err(f) => {
            tracing::debug!(method = %call.method, code = f.code, fault = %f.string, "XML-RPC fault");
            xmlrpc::fault_response(&f)
        }
    };
    ([(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

async fn not_post() -> Response {
    text(
        StatusCode::BAD_REQUEST,
        "XML-RPC requests are POSTed to /RPC2\n",
    )
}

/// supervisord's basic auth: 401 with `WWW-Authenticate: Basic realm="default"`.
async fn basic_auth(State(cx): State<Compat>, req: Request, next: Next) -> Response {
    match &cx.guard {
        Guard::Open => next.run(req).await,
        Guard::Refuse(why) => text(StatusCode::FORBIDDEN, format!("{why}\n")),
        Guard::Basic(creds) => {
            let ok = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    let (scheme, rest) = v.trim().split_once(' ')?;
                    scheme.eq_ignore_ascii_case("basic").then_some(rest)
                })
                .and_then(|b64| xmlrpc::base64_decode(b64.trim()).ok())
                .and_then(|raw| String::from_utf8(raw).ok())
                .is_some_and(|pair| match pair.split_once(':') {
                    Some((user, pass)) => creds.verify(user, pass),
                    None => false,
                });
            if ok {
                next.run(req).await
            } else {
                let mut r = (
                    StatusCode::UNAUTHORIZED,
                    [(header::CONTENT_TYPE, "text/html")],
                    "<head>\n<title>Error response</title>\n</head>\n<body>\n<h1>Error response</h1>\n\
                     <p>Error code 401.\n<p>Message: Unauthorized.\n</body>\n",
                )
                    .into_response();
                let h = r.headers_mut();
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"default\""),
                );
                h.insert(header::CONNECTION, HeaderValue::from_static("close"));
                r
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// tail -f

async fn logtail_stdout(State(cx): State<Compat>, UrlPath(name): UrlPath<String>) -> Response {
    follow_process(&cx, &name, "stdout")
}

async fn logtail(
    State(cx): State<Compat>,
    UrlPath((name, channel)): UrlPath<(String, String)>,
) -> Response {
    follow_process(&cx, &name, &channel)
}

fn not_found(what: String) -> Response {
    text(StatusCode::NOT_FOUND, format!("{what}\n"))
}

/// supervisord's `logtail_handler`: 404 for an unknown process, channel or missing log file.
fn follow_process(cx: &Compat, spec: &str, channel: &str) -> Response {
    let (group, process) = rpc::split_namespec(spec);
    let snap = cx.supervisor.snapshot();
    let Some(p) = process.and_then(|name| {
        snap.processes
            .iter()
            .find(|p| p.group == group && p.name == name)
    }) else {
        return not_found(format!("no such process: {spec}"));
    };
    let path = match channel {
        "stdout" => p.stdout_logfile.clone(),
        "stderr" => p.stderr_logfile.clone(),
        _ => return not_found(format!("no such channel: {channel} (stdout or stderr)")),
    };
    // A log that is configured but not written yet is followed from when it appears
    // (supervisord creates its AUTO log files at start).
    let Some(path) = path.map(PathBuf::from) else {
        return not_found(format!("{spec} has no {channel} log file"));
    };
    let Some(out) = cx.supervisor.output(&p.name) else {
        return not_found(format!("no such process: {spec}"));
    };
    // Subscribe before reading, so nothing written in between is missed: the position in
    // the file, not the chunks, says what was sent.
    let wake = if channel == "stderr" {
        out.stderr.follow()
    } else {
        out.stdout.follow()
    };
    let f = FileFollow::open(&path, TAIL_HEAD);
    stream_response(Source::File(f), wake, cx.daemon.watch(), mtime(&path))
}

async fn mainlogtail(State(cx): State<Compat>) -> Response {
    let wake = mainlog::main_log().follow();
    match rpc::main_log_file(&cx) {
        Some(path) => {
            let f = FileFollow::open(&path, TAIL_HEAD);
            stream_response(Source::File(f), wake, cx.daemon.watch(), mtime(&path))
        }
        None => {
            let size = mainlog::main_log().size();
            let pos = size.saturating_sub(TAIL_HEAD);
            stream_response(Source::Memory { pos }, wake, cx.daemon.watch(), None)
        }
    }
}

fn mtime(path: &Path) -> Option<String> {
    let t = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
    let t: chrono::DateTime<chrono::Utc> = t.into();
    Some(t.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
}

const CHUNK: u64 = 64 * 1024;

/// Follows a log file by position, like supervisord's `tail_f_producer`: a truncated file
/// says `==> File truncated <==`, a rotated one (new inode) is reopened from its start
/// after the rest of the old one was read. A file that does not exist yet (the process has
/// not started since its log was configured) is opened when it appears.
struct FileFollow {
    path: PathBuf,
    file: Option<(std::fs::File, u64)>,
    pos: u64,
}

impl FileFollow {
    fn open(path: &Path, head: u64) -> FileFollow {
        let mut f = FileFollow {
            path: path.to_path_buf(),
            file: None,
            pos: 0,
        };
        if let Ok(file) = std::fs::File::open(path)
            && let Ok(meta) = file.metadata()
        {
            f.pos = meta.len().saturating_sub(head);
            f.file = Some((file, meta.ino()));
        }
        f
    }

    /// What is new since the last call, if anything.
    fn poll(&mut self) -> Option<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        for _ in 0..2 {
            if let Some((file, _)) = self.file.as_mut() {
                let size = file.metadata().ok()?.len();
                if size < self.pos {
                    self.pos = 0;
                    return Some(b"==> File truncated <==\n".to_vec());
                }
                if size > self.pos {
                    let n = (size - self.pos).min(CHUNK);
                    let mut buf = Vec::with_capacity(n as usize);
                    file.seek(SeekFrom::Start(self.pos)).ok()?;
                    file.take(n).read_to_end(&mut buf).ok()?;
                    self.pos += buf.len() as u64;
                    return (!buf.is_empty()).then_some(buf);
                }
            }
            // At the end of this file: has the path moved on to a new one (rotation), or
            // appeared?
            let current = self.file.as_ref().map(|(_, ino)| *ino);
            match std::fs::metadata(&self.path) {
                Ok(m) if Some(m.ino()) != current => {
                    let file = std::fs::File::open(&self.path).ok()?;
                    self.file = Some((file, m.ino()));
                    self.pos = 0;
                }
                _ => return None,
            }
        }
        None
    }
}

enum Source {
    File(FileFollow),
    /// The in-memory main log, from this offset.
    Memory {
        pos: u64,
    },
}

impl Source {
    fn poll(&mut self) -> Option<Vec<u8>> {
        match self {
            Source::File(f) => f.poll(),
            Source::Memory { pos } => {
                let log = mainlog::main_log();
                if log.size() < *pos {
                    *pos = 0;
                    return Some(b"==> File truncated <==\n".to_vec());
                }
                let (data, next) = log.read(*pos, CHUNK);
                *pos = next;
                (!data.is_empty()).then_some(data)
            }
        }
    }
}

struct Tail<T> {
    source: Source,
    wake: broadcast::Receiver<T>,
    stop: watch::Receiver<Arc<DaemonView>>,
}

/// A chunked `200 text/plain` stream: what is there, then whatever is written next, woken
/// by the writer (no polling); it ends when the client goes or the daemon shuts down.
fn stream_response<T: Clone + Send + 'static>(
    source: Source,
    wake: broadcast::Receiver<T>,
    stop: watch::Receiver<Arc<DaemonView>>,
    last_modified: Option<String>,
) -> Response {
    let tail = Tail { source, wake, stop };
    let stream = futures::stream::unfold(tail, |mut t| async move {
        loop {
            if let Some(data) = t.source.poll() {
                return Some((Ok::<_, Infallible>(Bytes::from(data)), t));
            }
            if t.stop.borrow().state == DaemonState::Shutdown {
                return None;
            }
            tokio::select! {
                r = t.wake.recv() => match r {
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Coalesce a burst of writes into one read.
                        while matches!(
                            t.wake.try_recv(),
                            Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_))
                        ) {}
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                r = t.stop.changed() => {
                    if r.is_err() {
                        return None;
                    }
                }
            }
        }
    });
    let mut r = Response::new(Body::from_stream(stream));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain;charset=utf-8"),
    );
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    if let Some(lm) = last_modified.and_then(|s| HeaderValue::from_str(&s).ok()) {
        h.insert(header::LAST_MODIFIED, lm);
    }
    r
}

// ---------------------------------------------------------------------------------------
// Servers

/// The extra listeners of `[rpc]`, bound before the supervisor starts (so children can be
/// told `SUPERVISOR_SERVER_URL`) and served once it runs.
pub struct Listeners {
    inet: Option<(tokio::net::TcpListener, Guard)>,
    unix: Option<(tokio::net::UnixListener, Guard, PathBuf)>,
    /// supervisord's `serverurl` for children: the socket, else the inet server, else vigil's
    /// own listener.
    pub server_url: String,
}

/// Bind `[rpc.inet]` (unless it is vigil's own listener) and `[rpc.unix]`.
pub async fn bind(config: &Config, main_url: &str) -> anyhow::Result<Listeners> {
    let mut l = Listeners {
        inet: None,
        unix: None,
        server_url: main_url.to_string(),
    };
    let Some(rpc) = &config.rpc else {
        return Ok(l);
    };
    if let Some(inet) = &rpc.inet
        && inet.addr != config.vigil.listen
    {
        if !inet.addr.ip().is_loopback() && inet.auth.is_none() {
            bail!(
                "refusing to serve XML-RPC on {}: it is not a loopback address and no username \
                 and password are configured for it",
                inet.addr
            );
        }
        let tcp = tokio::net::TcpListener::bind(inet.addr)
            .await
            .with_context(|| format!("binding the XML-RPC server to {}", inet.addr))?;
        let addr = tcp.local_addr().context("reading the XML-RPC address")?;
        l.server_url = format!("http://{addr}");
        l.inet = Some((tcp, Guard::from_auth(inet.auth.as_ref())));
    }
    if let Some(unix) = &rpc.unix {
        let sock = bind_unix(&unix.path, unix.chmod).await?;
        l.server_url = format!("unix://{}", unix.path.display());
        l.unix = Some((
            sock,
            Guard::from_auth(unix.auth.as_ref()),
            unix.path.clone(),
        ));
    }
    Ok(l)
}

/// A Unix socket like supervisord's: a stale socket file is replaced, a live one (another
/// server answers) is an error; the file gets mode `chmod`.
pub async fn bind_unix(path: &Path, chmod: u32) -> anyhow::Result<tokio::net::UnixListener> {
    if path.exists() {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            bail!(
                "another program is already listening on {}; refusing to replace it",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing the stale socket {}", path.display()))?;
    }
    let sock = tokio::net::UnixListener::bind(path)
        .with_context(|| format!("binding the XML-RPC socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(chmod))
        .with_context(|| format!("chmod {chmod:o} {}", path.display()))?;
    Ok(sock)
}

impl Listeners {
    /// What children are told: `SUPERVISOR_SERVER_URL`, and `SUPERVISOR_USERNAME` /
    /// `SUPERVISOR_PASSWORD` (read by supervisor's `childutils.getRPCInterface`, so that
    /// listeners such as superlance's work against a server with basic auth) when that
    /// server has a plaintext password.
    pub fn child_env(&self, config: &Config, main_addr: SocketAddr) -> Vec<(String, String)> {
        let mut env = vec![("SUPERVISOR_SERVER_URL".to_string(), self.server_url.clone())];
        let guard = if let Some((_, g, _)) = &self.unix {
            g.clone()
        } else if let Some((_, g)) = &self.inet {
            g.clone()
        } else {
            main_guard(config, main_addr)
        };
        if let Guard::Basic(c) = guard
            && let crate::config::Password::Plain(p) = &c.password
        {
            env.push(("SUPERVISOR_USERNAME".to_string(), c.username.clone()));
            env.push(("SUPERVISOR_PASSWORD".to_string(), p.clone()));
        }
        env
    }

    /// Serve the compat routes on each listener (on `tasks`) until `stop`; the socket file is
    /// removed when its server ends.
    pub fn serve(
        self,
        cx: &Compat,
        stop: &CancellationToken,
        tasks: &tokio_util::task::TaskTracker,
    ) {
        if let Some((tcp, guard)) = self.inet {
            let app = routes(cx.with_guard(guard));
            let stop = stop.clone();
            tasks.spawn(async move {
                let r = axum::serve(tcp, app)
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await;
                if let Err(e) = r {
                    tracing::warn!(error = %e, "XML-RPC server ended with an error");
                }
            });
        }
        if let Some((sock, guard, path)) = self.unix {
            let app = routes(cx.with_guard(guard));
            let stop = stop.clone();
            tasks.spawn(async move {
                let r = axum::serve(sock, app)
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await;
                if let Err(e) = r {
                    tracing::warn!(error = %e, "XML-RPC socket server ended with an error");
                }
                let _ = std::fs::remove_file(&path);
            });
        }
    }
}
