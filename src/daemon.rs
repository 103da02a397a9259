//! The composition root: open the store, start the event log and the supervisor, serve
//! HTTP, and own the shutdown order. Signals arrive only through `tokio::signal::unix`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::{self, AppState};
use crate::config::Config;
use crate::events::EventLog;
use crate::fields;
use crate::ingest;
use crate::monitor;
use crate::store::Store;
use crate::supervisor::{self, ReloadReport, SupervisorHandle};

use crate::compat::control;
pub use crate::compat::{DaemonControl, DaemonState, DaemonView};

/// How the daemon was started.
pub struct RunOptions {
    pub config: Config,
    /// Where to re-read the config on SIGHUP (None for the embedded demo config).
    pub reload_from: Option<PathBuf>,
    /// Command-line settings applied to `config` and to every re-read.
    pub overrides: crate::config::Overrides,
    /// Printed after the listening line (the demo's greeting).
    pub banner: Option<String>,
    /// `--recover`: a damaged database is set aside and vigil starts HALTED on a new one.
    pub recover: bool,
}

/// Refuse addresses that would expose an unauthenticated API: without `[auth]`, loopback only.
pub fn check_listen(addr: &SocketAddr, auth_configured: bool) -> anyhow::Result<()> {
    if !addr.ip().is_loopback() && !auth_configured {
        bail!(
            "refusing to listen on {addr}: it is not a loopback address and authentication is not \
             configured; use 127.0.0.1 or ::1, or configure [auth] with users or tokens \
             (see docs/security.md)"
        );
    }
    Ok(())
}

/// Raise the soft open-files limit to the hard limit: each process needs ~6 descriptors
/// (pipes, log files, its pidfd), and systemd's default soft limit of 1024 would cap vigil
/// near 170 processes. Returns the limit in effect.
pub fn raise_fd_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(e) => {
                tracing::warn!(error = %e, soft, hard, "cannot raise the open-files limit");
                soft
            }
        },
        Ok((soft, _)) => soft,
        Err(_) => 0,
    }
}

/// Take `data_dir/vigil.lock` exclusively, or fail naming the other vigil's pid.
fn lock_data_dir(dir: &std::path::Path) -> anyhow::Result<nix::fcntl::Flock<std::fs::File>> {
    use std::io::{Read, Seek, Write};
    let path = dir.join("vigil.lock");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(mut lock) => {
            lock.set_len(0).ok();
            lock.seek(std::io::SeekFrom::Start(0)).ok();
            let _ = writeln!(lock, "{}", std::process::id());
            Ok(lock)
        }
        Err((mut file, _)) => {
            let mut other = String::new();
            let _ = file.read_to_string(&mut other);
            bail!(
                "another vigil (pid {}) is already running with data_dir {}; one data_dir has one daemon",
                other.trim(),
                dir.display()
            )
        }
    }
}

/// What the daemon holds before it starts: the `data_dir` lock and its bound listeners (the
/// REST API's, `[rpc]`'s XML-RPC servers, `[auth] metrics_listen`). A test binds
/// `127.0.0.1:0` and hands them to [`run`].
pub struct Bound {
    /// One vigil per data_dir: the trading state has exactly one writer. Held until the
    /// daemon ends (the kernel drops it even on SIGKILL).
    pub data_dir_lock: nix::fcntl::Flock<std::fs::File>,
    pub http: tokio::net::TcpListener,
    pub rpc: crate::compat::Listeners,
    pub metrics: Option<tokio::net::TcpListener>,
}

/// Take the `data_dir` lock and bind what `config` listens on.
pub async fn bind(config: &Config) -> anyhow::Result<Bound> {
    check_listen(&config.vigil.listen, config.auth.is_some())?;
    let data_dir_lock = lock_data_dir(&config.vigil.data_dir)?;
    let http = tokio::net::TcpListener::bind(config.vigil.listen)
        .await
        .with_context(|| format!("binding {}", config.vigil.listen))?;
    let addr = http.local_addr().context("reading the bound address")?;
    let rpc = crate::compat::bind(config, &format!("http://{addr}")).await?;
    let metrics = match config.auth.as_ref().and_then(|a| a.metrics_listen) {
        Some(maddr) => Some(
            tokio::net::TcpListener::bind(maddr)
                .await
                .with_context(|| format!("binding [auth] metrics_listen {maddr}"))?,
        ),
        None => None,
    };
    Ok(Bound {
        data_dir_lock,
        http,
        rpc,
        metrics,
    })
}

/// Run the daemon on `bound` until SIGTERM/SIGINT, XML-RPC `shutdown` or `stop` is
/// cancelled; then stop everything in order and join the tasks it spawned (`tasks`, closed
/// and empty when this returns).
pub async fn run(
    opts: RunOptions,
    bound: Bound,
    stop: CancellationToken,
    tasks: TaskTracker,
) -> anyhow::Result<()> {
    let config = opts.config;
    check_listen(&config.vigil.listen, config.auth.is_some())?;
    let Bound {
        data_dir_lock: _data_dir_lock,
        http: listener,
        rpc: rpc_listeners,
        metrics: metrics_listener,
    } = bound;
    let nofile = raise_fd_limit();
    let nprocs: usize = config.programs.iter().map(|p| p.processes.len()).sum();
    if nofile > 0 && (nprocs as u64).saturating_mul(6) + 64 > nofile {
        tracing::warn!(
            processes = nprocs,
            limit = nofile,
            "the open-files limit may be too low for this many processes (about 6 each); raise LimitNOFILE"
        );
    }
    // Before anything records a metric.
    api::metrics::install();
    // Cancelled once the programs are stopped: the HTTP servers and every long-lived task
    // below end with it, and `tasks` (where each of them runs) is joined before the final
    // flush.
    let shutdown = CancellationToken::new();
    // An early return (an error below) ends what was started too.
    let _end_tasks = shutdown.clone().drop_guard();
    let auth = config
        .auth
        .clone()
        .map(|a| std::sync::Arc::new(crate::auth::Auth::new(a)));
    let db = config.db_path();
    let faults = crate::store::startup::check_database(&db, opts.recover)?;
    let (record, found) =
        crate::store::record::StateRecord::open(&config.vigil.data_dir.join("vigil.state"))
            .context("opening the state record")?;
    let record = std::sync::Arc::new(record);
    let store = Store::open(&db).with_context(|| format!("opening {}", db.display()))?;
    let events = EventLog::start(store, record.clone()).context("starting the event writer")?;
    for f in &faults {
        events.health().startup_problem(f.clone());
    }
    crate::store::retention::start(
        events.store().clone(),
        config.monitor.retention,
        &tasks,
        shutdown.clone(),
    );
    api::metrics::spawn_event_counters(&events, &tasks, shutdown.clone());

    let addr = listener.local_addr().context("reading the bound address")?;
    let url = format!("http://{addr}");
    // supervisord compatibility: its main log file, and the XML-RPC listeners of [rpc].
    if let Some(log) = config.rpc.as_ref().and_then(|r| r.logfile.as_ref()) {
        crate::compat::mainlog::main_log()
            .attach(Some(log))
            .context("opening the [supervisord] logfile")?;
    }
    let pidfile = config
        .rpc
        .as_ref()
        .and_then(|r| r.pidfile.as_deref())
        .and_then(write_pidfile);
    let (control, mut requests, ctl) = control::channel(
        config.clone(),
        opts.reload_from.clone(),
        opts.overrides.clone(),
    );

    events.submit(
        "daemon_started",
        fields! {"pid" => std::process::id(), "version" => env!("CARGO_PKG_VERSION"), "listen" => url},
    );
    let socket = config.vigil.data_dir.join("vigil.sock");
    let (stdout_tx, stdout_rx) = tokio::sync::mpsc::channel(ingest::STDOUT_EVENTS_QUEUE);
    let sup = supervisor::start(
        &config,
        events.clone(),
        supervisor::Options {
            extra_env: vec![
                ("VIGIL_URL".into(), url.clone()),
                ("VIGIL_SOCKET".into(), socket.display().to_string()),
                (
                    "VIGIL_STATE_FILE".into(),
                    config
                        .vigil
                        .data_dir
                        .join("trading_state")
                        .display()
                        .to_string(),
                ),
            ]
            .into_iter()
            // SUPERVISOR_SERVER_URL (and credentials) for supervisorctl and listeners.
            .chain(rpc_listeners.child_env(&config, addr))
            .collect(),
            stdout_events: Some(stdout_tx),
            listener_io: crate::listeners::start(&config, events.clone(), &tasks, shutdown.clone()),
            tasks: tasks.clone(),
        },
    );
    // The monitor restores the trading state before it accepts anything; it is the only
    // writer of that state.
    let monitor = monitor::start(
        config.monitor.clone(),
        events.clone(),
        monitor::Persist::new(
            record,
            found,
            events.store().clone(),
            config.vigil.data_dir.join("trading_state"),
            faults,
        ),
        sup.clone(),
        &tasks,
        shutdown.clone(),
    );
    let venues = crate::venue::start(
        &config.venues,
        events.clone(),
        monitor.clone(),
        &tasks,
        shutdown.clone(),
    );
    ingest::serve_stdout(stdout_rx, monitor.clone(), &tasks, shutdown.clone());
    if config.monitor.ingest.socket {
        ingest::serve_socket(&socket, monitor.clone(), &tasks, shutdown.clone())
            .with_context(|| format!("listening on {}", socket.display()))?;
    }
    ingest::serve_files(
        &config.monitor.ingest.files,
        events.store().clone(),
        monitor.clone(),
        &tasks,
        shutdown.clone(),
    );

    // Background jobs (issue 10): recovers the queue and leftovers before serving.
    let jobs = crate::jobs::start(
        config.jobs.clone(),
        events.clone(),
        crate::jobs::Options {
            data_dir: config.vigil.data_dir.clone(),
            url: url.clone(),
            cgroups: None,
        },
    )
    .context("starting background jobs")?;

    let compat = crate::compat::Compat {
        supervisor: sup.clone(),
        events: events.clone(),
        daemon: control.clone(),
        guard: crate::compat::Guard::Open,
    };
    let state = AppState {
        shutdown: shutdown.clone(),
        supervisor: sup.clone(),
        events: events.clone(),
        monitor: monitor.clone(),
        auth: auth.clone(),
        jobs: jobs.clone(),
        compat: compat.with_guard(crate::compat::main_guard(&config, addr)),
        venues,
        tasks: tasks.clone(),
    };
    let app = api::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let http_stop = shutdown.clone();
    rpc_listeners.serve(&compat, &shutdown, &tasks);
    let server = tasks.spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { http_stop.cancelled().await })
            .await
    });
    // `[auth] metrics_listen`: GET /metrics only, for Prometheus, without authentication.
    if let Some(l) = metrics_listener {
        let bound = l.local_addr().context("reading the metrics address")?;
        let app = api::metrics::scrape_router(std::sync::Arc::new(state));
        let stop = shutdown.clone();
        tasks.spawn(async move {
            if let Err(e) = axum::serve(l, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
            {
                tracing::warn!(error = %e, "metrics listener ended with an error");
            }
        });
        println!("vigil: metrics on http://{bound}/metrics");
    }
    // Before the readiness line: a SIGTERM right after it must be a graceful stop.
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
    // The readiness line tests and scripts wait for; it carries the bound address.
    println!("vigil: listening on {url}");
    if let Some(b) = &opts.banner {
        println!("{b}");
    }
    tasks.spawn(until(shutdown.clone(), notify_ready(sup.clone())));
    tasks.spawn(until(
        shutdown.clone(),
        watchdog(sup.clone(), events.clone()),
    ));

    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("received SIGTERM indicating exit request"); break; }
            _ = int.recv() => { tracing::info!("received SIGINT indicating exit request"); break; }
            _ = stop.cancelled() => { tracing::info!("shutdown requested"); break; }
            _ = hup.recv() => {
                tracing::info!("received SIGHUP indicating restart request");
                let _ = reload(&ctl, &sup, &monitor, auth.as_deref(), &tasks).await;
            }
            // supervisord's XML-RPC shutdown / restart / reloadConfig / groups.
            Some(req) = requests.recv() => match ctl.handle(req, &sup).await {
                control::Next::Continue => {}
                control::Next::Shutdown => break,
                control::Next::Reload(reply) => {
                    let _ = reply.send(reload(&ctl, &sup, &monitor, auth.as_deref(), &tasks).await);
                }
            },
        }
    }
    ctl.stopping();
    // Shutdown order: stop programs (reverse priority), stop HTTP, flush the store.
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    // Jobs and programs together: running jobs end `interrupted`, queued ones stay queued for
    // the next start; the supervisor's shutdown must not wait for the jobs' (a restart in
    // progress is abandoned only once the supervisor is told to shut down).
    tokio::join!(jobs.shutdown(), sup.shutdown());
    shutdown.cancel();
    match tokio::time::timeout(Duration::from_secs(5), server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "HTTP server ended with an error"),
        Ok(Err(e)) => tracing::warn!(error = %e, "HTTP server task failed"),
        Err(_) => tracing::warn!("HTTP server did not stop within 5 s (open streams)"),
    }
    // notify_ready and the watchdog end with the token; the servers have ended above.
    tasks.close();
    if tokio::time::timeout(Duration::from_secs(5), tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("the daemon's tasks did not end within 5 s");
    }
    events.submit("daemon_stopped", fields! {"pid" => std::process::id()});
    events.flush().await;
    events.checkpoint().await;
    if let Some(p) = pidfile {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

/// `[supervisord] pidfile`: write vigil's pid as supervisord does (`PID\n`) and log its line;
/// a failure is logged and not fatal, as in supervisord. Returns the file to remove at exit.
fn write_pidfile(path: &std::path::Path) -> Option<PathBuf> {
    let pid = std::process::id();
    match std::fs::write(path, format!("{pid}\n")) {
        Ok(()) => {
            tracing::info!("supervisord started with pid {pid}");
            Some(path.to_path_buf())
        }
        Err(e) => {
            tracing::error!("could not write pidfile {}: {e}", path.display());
            None
        }
    }
}

/// SIGHUP and XML-RPC `supervisor.restart`: re-read the config (errors keep the running
/// one, the monitor's checks and rules included) and apply it: the monitor's checks and rules
/// by id (`monitor::reload`), and the programs (`[vigil] reload = "apply"`) or restart everything with it
/// (`"restart"`, a supervisord config's default; this returns once the restart has begun).
async fn reload(
    ctl: &control::Control,
    sup: &SupervisorHandle,
    monitor: &monitor::MonitorHandle,
    auth: Option<&crate::auth::Auth>,
    tasks: &TaskTracker,
) -> Result<ReloadReport, String> {
    if ctl.restarting() {
        let e = "a restart is already under way".to_string();
        tracing::warn!("reload: {e}");
        return Err(e);
    }
    let new = match ctl.read() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("reload: keeping the running configuration: {e}");
            return Err(e);
        }
    };
    if new.vigil != ctl.view().active.vigil {
        tracing::warn!(
            "reload: changes to [vigil] (listen, data_dir, log_level) need a restart; applying programs only"
        );
    }
    // The listener pools are built once, at start: their names, order, `events`,
    // `buffer_size` and number of processes stay what they were until vigil restarts.
    let pools = |c: &Config| -> Vec<(String, Vec<String>, usize, usize)> {
        c.eventlisteners
            .iter()
            .map(|l| {
                (
                    l.program.name.clone(),
                    l.events.clone(),
                    l.buffer_size,
                    l.program.processes.len(),
                )
            })
            .collect()
    };
    if pools(&new) != pools(&ctl.view().active) {
        tracing::warn!(
            "reload: changes to the event listener pools (added, removed or reordered pools, events, buffer_size, numprocs) need a restart of vigil; the pools keep their running settings"
        );
    }
    // Users, tokens, TTL and secret apply at once; switching auth on or off does not.
    match (auth, &new.auth) {
        (Some(a), Some(c)) => a.reload(c.clone()),
        (None, None) => {}
        _ => tracing::warn!(
            "reload: adding or removing [auth] needs a restart; keeping the current mode"
        ),
    }
    // The monitor's checks and rules: only what changed (`monitor_reloaded`).
    if let Err(e) = monitor.reload(new.monitor.clone()).await {
        tracing::error!(error = %e, "reload: the monitor did not take the new checks and rules");
    }
    if new.vigil.reload == crate::config::ReloadMode::Restart {
        ctl.restart(sup, new, tasks);
        return Ok(ReloadReport::default());
    }
    let r = ctl.replace(sup, new).await;
    if let Err(e) = &r {
        tracing::error!(error = %e, "reload failed");
    }
    r
}

/// `task` until `stop` is cancelled.
async fn until(stop: CancellationToken, task: impl std::future::Future<Output = ()>) {
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = task => {}
    }
}

/// READY=1 once every autostart program has left STARTING.
async fn notify_ready(sup: SupervisorHandle) {
    let mut w = sup.watch();
    loop {
        if w.borrow_and_update().started {
            break;
        }
        if w.changed().await.is_err() {
            return;
        }
    }
    tracing::info!("all autostart programs are up");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
}

/// WATCHDOG=1 at half the unit's WatchdogSec, and only after the supervisor loop and the
/// event writer both answered: a hung actor or store makes systemd restart vigil.
async fn watchdog(sup: SupervisorHandle, events: EventLog) {
    let Some(period) = sd_notify::watchdog_enabled() else {
        return;
    };
    let every = period / 2;
    loop {
        tokio::time::sleep(every).await;
        let alive = tokio::time::timeout(every, async {
            sup.ping().await && {
                events.flush().await;
                true
            }
        })
        .await
        .unwrap_or(false);
        if alive {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
        } else {
            tracing::error!("liveness check failed; withholding WATCHDOG=1");
        }
    }
}
