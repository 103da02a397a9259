//! Readiness probes (vigil extension, supervisord issue #584): while a process is STARTING,
//! probe it every `ready_interval`, each probe cut by `ready_timeout`, and report each result
//! to the actor, which feeds `Input::Ready` / `Input::NotReady` to the state machine. The
//! probe ends at the first success, or when the actor cancels it (the process left STARTING).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Internal;
use crate::config::{ProgramConfig, ReadinessCheck, ReadinessProbe};

pub(super) async fn probe(
    check: ReadinessCheck,
    program: Arc<ProgramConfig>,
    name: String,
    generation: u64,
    tx: mpsc::UnboundedSender<Internal>,
    cancel: CancellationToken,
) {
    let interval = Duration::from_millis(check.interval_ms.max(1));
    let timeout = Duration::from_millis(check.timeout_ms.max(1));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .unwrap_or_default();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let result = tokio::select! {
            _ = cancel.cancelled() => return,
            r = tokio::time::timeout(timeout, once(&check.probe, &program, &http)) => {
                r.unwrap_or_else(|_| Err(format!("timed out after {} ms", check.timeout_ms)))
            }
        };
        let ok = result.is_ok();
        if tx
            .send(Internal::Probe {
                name: name.clone(),
                generation,
                ready: result,
            })
            .is_err()
            || ok
        {
            return;
        }
    }
}

async fn once(
    probe: &ReadinessProbe,
    program: &ProgramConfig,
    http: &reqwest::Client,
) -> Result<(), String> {
    match probe {
        ReadinessProbe::Command { argv } => {
            let Some((exe, args)) = argv.split_first() else {
                return Err("empty ready_command".into());
            };
            let mut cmd = tokio::process::Command::new(exe);
            cmd.args(args)
                .envs(&program.environment)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true);
            if let Some(d) = &program.directory {
                cmd.current_dir(d);
            }
            match cmd.status().await {
                Ok(st) if st.success() => Ok(()),
                Ok(st) => Err(format!("ready_command {st}")),
                Err(e) => Err(format!("ready_command: {e}")),
            }
        }
        ReadinessProbe::Http { url } => match http.get(url).send().await {
            Ok(r) if r.status().is_success() || r.status().is_redirection() => Ok(()),
            Ok(r) => Err(format!("GET {url}: HTTP {}", r.status())),
            Err(e) => Err(format!("GET {url}: {e}")),
        },
        ReadinessProbe::Tcp { host, port } => {
            match tokio::net::TcpStream::connect((host.as_str(), *port)).await {
                Ok(_) => Ok(()),
                Err(e) => Err(format!("connect {host}:{port}: {e}")),
            }
        }
    }
}
