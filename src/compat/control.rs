//! Requests to the daemon's main loop from inside the daemon (supervisord's XML-RPC
//! `shutdown`, `restart`, `reloadConfig`, `addProcessGroup`, `removeProcessGroup`). They take
//! the same code paths as SIGTERM and SIGHUP: the loop owns the running ("active") config and
//! the one last read from the file ("loaded"), and is the only place either changes.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};

use super::groups::{self, GroupError};
use crate::config::{self, Config, Overrides};
use crate::supervisor::{ReloadReport, SupervisorHandle};

/// supervisord's daemon states (`supervisor.getState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaemonState {
    Running,
    Restarting,
    Shutdown,
}

impl DaemonState {
    /// supervisord's `SupervisorStates` code and name.
    pub fn code(self) -> i64 {
        match self {
            DaemonState::Running => 1,
            DaemonState::Restarting => 0,
            DaemonState::Shutdown => -1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DaemonState::Running => "RUNNING",
            DaemonState::Restarting => "RESTARTING",
            DaemonState::Shutdown => "SHUTDOWN",
        }
    }
}

/// What the daemon runs, as published after every change.
#[derive(Debug, Clone)]
pub struct DaemonView {
    pub state: DaemonState,
    /// The configuration the supervisor runs.
    pub active: Arc<Config>,
    /// The configuration as last read from the file (`reloadConfig`); `addProcessGroup` takes
    /// groups from here.
    pub loaded: Arc<Config>,
    /// After a `reloadConfig`: the groups added since (supervisord's `getAllConfigInfo`
    /// reports an AUTO log as `auto` in a freshly read configuration until its group is
    /// added). `None` when `loaded` is what runs.
    pub reread: Option<std::collections::BTreeSet<String>>,
}

pub enum Request {
    Shutdown,
    Reload {
        reply: oneshot::Sender<Result<ReloadReport, String>>,
    },
    Reread {
        reply: oneshot::Sender<Result<(), String>>,
    },
    AddGroup {
        name: String,
        reply: oneshot::Sender<Result<(), GroupError>>,
    },
    RemoveGroup {
        name: String,
        reply: oneshot::Sender<Result<(), GroupError>>,
    },
}

/// What the main loop does after [`Control::handle`].
pub enum Next {
    Continue,
    /// The SIGTERM path.
    Shutdown,
    /// The SIGHUP path; its outcome goes to `reply`.
    Reload(oneshot::Sender<Result<ReloadReport, String>>),
}

/// The handle the XML-RPC layer holds; cheap to clone.
#[derive(Clone)]
pub struct DaemonControl {
    tx: mpsc::Sender<Request>,
    view: watch::Receiver<Arc<DaemonView>>,
}

const GONE: &str = "the daemon is shutting down";

impl DaemonControl {
    pub fn view(&self) -> Arc<DaemonView> {
        self.view.borrow().clone()
    }

    pub fn watch(&self) -> watch::Receiver<Arc<DaemonView>> {
        self.view.clone()
    }

    /// Ask for the SIGTERM path (stop everything, exit). Returns once the loop has it.
    pub async fn shutdown(&self) {
        let _ = self.tx.send(Request::Shutdown).await;
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Request,
    ) -> Result<T, &'static str> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).await.map_err(|_| GONE)?;
        rx.await.map_err(|_| GONE)
    }

    /// The SIGHUP path: re-read the file and apply it.
    pub async fn reload(&self) -> Result<ReloadReport, String> {
        self.ask(|reply| Request::Reload { reply })
            .await
            .map_err(String::from)?
    }

    /// Re-read the file without changing any process.
    pub async fn reread(&self) -> Result<(), String> {
        self.ask(|reply| Request::Reread { reply })
            .await
            .map_err(String::from)?
    }

    pub async fn add_group(&self, name: &str) -> Result<(), GroupError> {
        let name = name.to_string();
        self.ask(|reply| Request::AddGroup { name, reply })
            .await
            .map_err(|e| GroupError::Failed(e.into()))?
    }

    pub async fn remove_group(&self, name: &str) -> Result<(), GroupError> {
        let name = name.to_string();
        self.ask(|reply| Request::RemoveGroup { name, reply })
            .await
            .map_err(|e| GroupError::Failed(e.into()))?
    }
}

/// The loop's side: the receiver and the state it owns.
pub struct Control {
    path: Option<PathBuf>,
    overrides: Overrides,
    view: watch::Sender<Arc<DaemonView>>,
}

/// A handle, the request receiver and the loop-side state for a daemon started on `config`
/// (re-read from `path` on reload, with the command line's `overrides`; `None` for an embedded
/// config).
pub fn channel(
    config: Config,
    path: Option<PathBuf>,
    overrides: Overrides,
) -> (DaemonControl, mpsc::Receiver<Request>, Control) {
    let (tx, rx) = mpsc::channel(16);
    let config = Arc::new(config);
    let (view_tx, view_rx) = watch::channel(Arc::new(DaemonView {
        state: DaemonState::Running,
        active: config.clone(),
        loaded: config,
        reread: None,
    }));
    (
        DaemonControl { tx, view: view_rx },
        rx,
        Control {
            path,
            overrides,
            view: view_tx,
        },
    )
}

impl Control {
    fn publish(&self, f: impl FnOnce(&mut DaemonView)) {
        self.view.send_modify(|v| {
            let mut next = (**v).clone();
            f(&mut next);
            *v = Arc::new(next);
        });
    }

    pub fn view(&self) -> Arc<DaemonView> {
        self.view.borrow().clone()
    }

    /// From now on every RPC but a few answers SHUTDOWN_STATE.
    pub fn stopping(&self) {
        self.publish(|v| v.state = DaemonState::Shutdown);
    }

    /// Read the configuration file again (an embedded configuration has none).
    pub fn read(&self) -> Result<Config, String> {
        let Some(path) = &self.path else {
            return Err("this configuration is embedded; there is no file to re-read".into());
        };
        config::load(path)
            .map(|c| {
                for w in &c.warnings {
                    tracing::warn!("{w}");
                }
                self.overrides.apply(c)
            })
            .map_err(|errs| errs.to_string())
    }

    /// Make `new` the running configuration (and the last read one): the supervisor diffs it
    /// against what runs (the second half of SIGHUP and `supervisor.restart`).
    pub async fn replace(
        &self,
        sup: &SupervisorHandle,
        new: Config,
    ) -> Result<ReloadReport, String> {
        self.publish(|v| v.state = DaemonState::Restarting);
        let report = sup.reload(new.clone()).await;
        let new = Arc::new(new);
        self.publish(|v| {
            v.state = DaemonState::Running;
            v.active = new.clone();
            v.loaded = new;
            v.reread = None;
        });
        report.map_err(|e| e.to_string())
    }

    /// supervisord's restart (`[vigil] reload = "restart"`): from now on the state is
    /// RESTARTING (every RPC but `getState` and `sendRemoteCommEvent` answers SHUTDOWN_STATE,
    /// as in supervisord); the supervisor stops everything in reverse priority and starts
    /// `new` as at start-up, in the background so that the main loop still takes signals (a
    /// SIGTERM meanwhile turns it into a shutdown). Returns at once.
    /// The restart runs on `tasks` (it ends once the supervisor answers, also when a
    /// shutdown abandons it).
    pub fn restart(
        &self,
        sup: &SupervisorHandle,
        new: Config,
        tasks: &tokio_util::task::TaskTracker,
    ) {
        self.publish(|v| v.state = DaemonState::Restarting);
        let (sup, view) = (sup.clone(), self.view.clone());
        tasks.spawn(async move {
            match sup.restart_all(new.clone()).await {
                Ok(report) => {
                    tracing::info!(
                        added = ?report.added, changed = ?report.changed, removed = ?report.removed,
                        "restart complete"
                    );
                    let new = Arc::new(new);
                    view.send_modify(|v| {
                        let mut next = (**v).clone();
                        if next.state == DaemonState::Restarting {
                            next.state = DaemonState::Running;
                        }
                        next.active = new.clone();
                        next.loaded = new;
                        next.reread = None;
                        *v = Arc::new(next);
                    });
                }
                Err(e) => tracing::info!("restart abandoned: {e}"),
            }
        });
    }

    /// Whether a restart is under way (a reload then waits for it to finish).
    pub fn restarting(&self) -> bool {
        self.view().state == DaemonState::Restarting
    }

    /// Carry out one request, or say what the main loop must do.
    pub async fn handle(&self, req: Request, sup: &SupervisorHandle) -> Next {
        match req {
            Request::Shutdown => {
                tracing::info!("received shutdown request via XML-RPC");
                return Next::Shutdown;
            }
            Request::Reload { reply } => {
                tracing::info!("received restart request via XML-RPC");
                return Next::Reload(reply);
            }
            Request::Reread { reply } => {
                let r = self.read().map(|c| {
                    let c = Arc::new(c);
                    self.publish(|v| {
                        v.loaded = c;
                        v.reread = Some(Default::default());
                    });
                });
                let _ = reply.send(r);
            }
            Request::AddGroup { name, reply } => {
                let view = self.view();
                let r = match groups::with_group(&view.active, &view.loaded, &name) {
                    Ok(next) => self.apply(sup, next).await,
                    Err(e) => Err(e),
                };
                if r.is_ok() {
                    tracing::info!("added process group {name}");
                    self.publish(|v| {
                        if let Some(added) = v.reread.as_mut() {
                            added.insert(name.clone());
                        }
                    });
                }
                let _ = reply.send(r);
            }
            Request::RemoveGroup { name, reply } => {
                let view = self.view();
                let busy = sup
                    .snapshot()
                    .processes
                    .iter()
                    .any(|p| p.group == name && !p.state.is_stopped());
                let r = match groups::without_group(&view.active, &name) {
                    Ok(_) if busy => Err(GroupError::StillRunning(name.clone())),
                    Ok(next) => self.apply(sup, next).await,
                    Err(e) => Err(e),
                };
                if r.is_ok() {
                    tracing::info!("removed process group {name}");
                }
                let _ = reply.send(r);
            }
        }
        Next::Continue
    }

    async fn apply(&self, sup: &SupervisorHandle, next: Config) -> Result<(), GroupError> {
        sup.reload(next.clone())
            .await
            .map_err(|e| GroupError::Failed(e.to_string()))?;
        let next = Arc::new(next);
        self.publish(|v| v.active = next);
        Ok(())
    }
}
