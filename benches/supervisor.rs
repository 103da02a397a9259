//! vigil next to supervisord 4.3.0, in one run, on the same machine.
//!
//!     cargo bench --bench supervisor
//!
//! What it measures (method as in ../shared/SUPERVISORD.md §8, code written here):
//!
//! (a) respawn latency: a supervised `stampsleep` appends its pid and its CLOCK_MONOTONIC
//!     time at exec to a file, then pauses. Per trial: wait until the newest child has been
//!     up long enough and the daemon reports it RUNNING with that pid, sleep a random
//!     0–1 s (de-phase from any daemon loop), take t0, SIGKILL it, wait for a new stamp.
//!     latency = new child's exec stamp − t0, both on CLOCK_MONOTONIC. For startsecs = 0
//!     and 1, for both daemons.
//! (b) memory and fds of the daemon supervising N programs (`/bin/sleep 1000000`).
//! (c) idle cost over a window: on-CPU time and voluntary context switches (wake-ups),
//!     summed over all of the daemon's threads.
//!
//! Environment knobs: BENCH_KILLS (30), BENCH_IDLE_SECS (30), BENCH_SETTLE_SECS (5),
//! BENCH_PROGRAMS (100), BENCH_KEEP=1 keeps the scratch directory, VIGIL_TEST_VENV
//! (default ./.venv, created by scripts/setup-test-deps, which this bench runs first).
//!
//! It exits non-zero if a daemon fails to start or a kill is not followed by a respawn.
//! Without `--bench` on the command line (e.g. `cargo test --all-targets`) it does nothing.

mod common;
use common::{Stats, cpu_model, env_or, loadavg};

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The helper program. Two modes:
///   stampsleep FILE     append "<pid> <CLOCK_MONOTONIC ns> <CLOCK_REALTIME ns>\n", then pause()
///   stampsleep --clock  for every byte read on stdin, answer CLOCK_MONOTONIC ns on a line
///                       (lets the harness map its own `Instant` onto CLOCK_MONOTONIC)
const STAMPSLEEP_C: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(clockid_t id) {
    struct timespec t;
    clock_gettime(id, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv) {
    char line[96];
    if (argc > 1 && strcmp(argv[1], "--clock") == 0) {
        char c;
        while (read(0, &c, 1) == 1) {
            int n = snprintf(line, sizeof line, "%lld\n", now_ns(CLOCK_MONOTONIC));
            if (write(1, line, n) != n) return 1;
        }
        return 0;
    }
    long long mono = now_ns(CLOCK_MONOTONIC), real = now_ns(CLOCK_REALTIME);
    if (argc > 1) {
        int n = snprintf(line, sizeof line, "%d %lld %lld\n", (int)getpid(), mono, real);
        int fd = open(argv[1], O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            if (write(fd, line, n) != n) { /* nothing sensible to do */ }
            close(fd);
        }
    }
    for (;;) pause();
}
"#;

const WANT_SUPERVISOR: &str = "4.3.0";
const START_TIMEOUT: Duration = Duration::from_secs(30);
const RESPAWN_TIMEOUT: Duration = Duration::from_secs(15);

fn main() -> ExitCode {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("supervisor bench: skipped (run it with `cargo bench --bench supervisor`)");
        return ExitCode::SUCCESS;
    }
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("supervisor bench: FAILED (see above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("supervisor bench: FAILED: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------
// Settings and machine

struct Settings {
    kills: usize,
    idle_secs: f64,
    settle_secs: f64,
    programs: usize,
    supervisord: PathBuf,
    vigil: PathBuf,
    stampsleep: PathBuf,
}

fn read_trim(path: &str) -> String {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

fn run() -> Result<bool> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let vigil = PathBuf::from(env!("CARGO_BIN_EXE_vigil"));

    println!("== setup");
    let st = Command::new(root.join("scripts/setup-test-deps"))
        .status()
        .context("running scripts/setup-test-deps")?;
    if !st.success() {
        bail!("scripts/setup-test-deps failed ({st})");
    }
    let venv = std::env::var_os("VIGIL_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".venv"));
    let supervisord = venv.join("bin/supervisord");
    let out = Command::new(&supervisord)
        .arg("--version")
        .output()
        .with_context(|| format!("running {} --version", supervisord.display()))?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if version != WANT_SUPERVISOR {
        bail!(
            "{} is version {version:?}, want {WANT_SUPERVISOR}",
            supervisord.display()
        );
    }

    let scratch = tempfile::Builder::new()
        .prefix("vigil-bench-")
        .tempdir()
        .context("creating the scratch directory")?;
    let dir = scratch.path().to_path_buf();
    let stampsleep = dir.join("stampsleep");
    fs::write(dir.join("stampsleep.c"), STAMPSLEEP_C)?;
    let st = Command::new("gcc")
        .args(["-O2", "-o"])
        .arg(&stampsleep)
        .arg(dir.join("stampsleep.c"))
        .status()
        .context("running gcc (needed for the stampsleep helper)")?;
    if !st.success() {
        bail!("gcc failed to build stampsleep ({st})");
    }

    let s = Settings {
        kills: env_or("BENCH_KILLS", 30usize)?,
        idle_secs: env_or("BENCH_IDLE_SECS", 30.0f64)?,
        settle_secs: env_or("BENCH_SETTLE_SECS", 5.0f64)?,
        programs: env_or("BENCH_PROGRAMS", 100usize)?,
        supervisord,
        vigil,
        stampsleep,
    };
    if s.kills == 0 || s.programs == 0 || s.idle_secs <= 0.0 {
        bail!("BENCH_KILLS, BENCH_PROGRAMS and BENCH_IDLE_SECS must be positive");
    }

    let clock = Clock::calibrate(&s.stampsleep)?;
    let started_load = loadavg();
    println!(
        "machine: {} CPUs, {}, Linux {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model(),
        read_trim("/proc/sys/kernel/osrelease")
    );
    println!("supervisord {version}: {}", s.supervisord.display());
    println!("vigil: {}", s.vigil.display());
    println!("scratch: {}", dir.display());
    println!(
        "clock: harness Instant mapped onto CLOCK_MONOTONIC within ±{:.1} µs",
        clock.uncertainty_ns as f64 / 1e3
    );
    println!(
        "kills per case: {}, programs: {}, idle window: {} s (settle {} s), load: {}",
        s.kills, s.programs, s.idle_secs, s.settle_secs, started_load
    );

    // The floor: how long this machine takes to fork+exec stampsleep with no daemon at all.
    let floor = spawn_floor(&s, &clock, &dir.join("floor"))?;
    // (a) Interleaved so that a change in machine load hits both daemons alike.
    let mut cases = Vec::new();
    for startsecs in [0u32, 1] {
        for kind in [Kind::Supervisord, Kind::Vigil] {
            let case_dir = dir.join(format!("{}-s{startsecs}", kind.name()));
            cases.push(latency_case(&s, &clock, kind, startsecs, &case_dir)?);
        }
    }
    // (b) + (c)
    let mut idles = Vec::new();
    for kind in [Kind::Supervisord, Kind::Vigil] {
        let case_dir = dir.join(format!("{}-n{}", kind.name(), s.programs));
        idles.push(idle_case(&s, kind, &case_dir)?);
    }
    let ended_load = loadavg();

    report(&s, &floor, &cases, &idles, &started_load, &ended_load);

    if std::env::var("BENCH_KEEP").is_ok_and(|v| v == "1") {
        let kept = scratch.keep();
        println!("scratch kept: {}", kept.display());
    }
    Ok(cases.iter().all(|c| c.failures == 0))
}

// ---------------------------------------------------------------------------------------
// CLOCK_MONOTONIC for the harness

/// Maps `Instant` (which is CLOCK_MONOTONIC on Linux, but opaque) onto CLOCK_MONOTONIC
/// nanoseconds: ask the helper for the time many times and keep the tightest round trip.
struct Clock {
    base: Instant,
    offset_ns: i128,
    uncertainty_ns: u128,
}

impl Clock {
    fn calibrate(stampsleep: &Path) -> Result<Clock> {
        let mut helper = Command::new(stampsleep)
            .arg("--clock")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting stampsleep --clock")?;
        let (Some(mut tx), Some(rx)) = (helper.stdin.take(), helper.stdout.take()) else {
            bail!("stampsleep --clock: no pipes");
        };
        let base = Instant::now();
        let result = Self::rounds(base, &mut tx, rx);
        drop(tx);
        let _ = helper.wait();
        result
    }

    fn rounds(base: Instant, tx: &mut ChildStdin, rx: ChildStdout) -> Result<Clock> {
        let mut rx = BufReader::new(rx);
        let mut best: Option<(u128, i128)> = None;
        let mut line = String::new();
        for _ in 0..2000 {
            let t1 = base.elapsed().as_nanos();
            tx.write_all(b"\n")?;
            tx.flush()?;
            line.clear();
            rx.read_line(&mut line)?;
            let t2 = base.elapsed().as_nanos();
            let mono: i128 = line.trim().parse().context("stampsleep --clock output")?;
            let rtt = t2 - t1;
            if best.is_none_or(|(r, _)| rtt < r) {
                best = Some((rtt, mono - ((t1 + t2) / 2) as i128));
            }
        }
        let (rtt, offset_ns) = best.context("no calibration rounds")?;
        Ok(Clock {
            base,
            offset_ns,
            uncertainty_ns: rtt / 2,
        })
    }

    fn mono_ns(&self) -> i128 {
        self.offset_ns + self.base.elapsed().as_nanos() as i128
    }
}

// ---------------------------------------------------------------------------------------
// The two daemons

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Supervisord,
    Vigil,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Supervisord => "supervisord",
            Kind::Vigil => "vigil",
        }
    }
}

/// What the daemon supervises.
enum Programs<'a> {
    /// One `target` running stampsleep.
    Target {
        stampsleep: &'a Path,
        stamps: &'a Path,
        startsecs: u32,
    },
    /// `n` processes of `/bin/sleep 1000000`, program `p`.
    Sleepers { n: usize },
}

enum Api {
    Rpc(PathBuf),
    Http(SocketAddr),
}

struct Daemon {
    kind: Kind,
    child: Child,
    api: Api,
    dir: PathBuf,
}

fn toml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl Daemon {
    fn start(s: &Settings, kind: Kind, dir: &Path, programs: &Programs) -> Result<Daemon> {
        fs::create_dir_all(dir.join("logs"))?;
        let d = dir.display();
        let log = fs::File::create(dir.join("daemon.out"))?;
        match kind {
            Kind::Supervisord => {
                let sock = dir.join("supervisor.sock");
                let mut conf = format!(
                    "[unix_http_server]\nfile={d}/supervisor.sock\n\n\
                     [supervisord]\nlogfile={d}/supervisord.log\npidfile={d}/supervisord.pid\n\
                     childlogdir={d}/logs\n\n\
                     [supervisorctl]\nserverurl=unix://{d}/supervisor.sock\n\n\
                     [rpcinterface:supervisor]\n\
                     supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
                );
                match programs {
                    Programs::Target {
                        stampsleep,
                        stamps,
                        startsecs,
                    } => conf.push_str(&format!(
                        "[program:target]\ncommand={} {}\nstartsecs={startsecs}\n",
                        stampsleep.display(),
                        stamps.display()
                    )),
                    Programs::Sleepers { n } => conf.push_str(&format!(
                        "[program:p]\ncommand=/bin/sleep 1000000\n\
                         process_name=%(program_name)s_%(process_num)03d\nnumprocs={n}\n"
                    )),
                }
                let path = dir.join("supervisord.conf");
                fs::write(&path, conf)?;
                // -n: stay in the foreground so the harness owns the pid; otherwise as §8.
                let child = Command::new(&s.supervisord)
                    .arg("-n")
                    .arg("-c")
                    .arg(&path)
                    .stdin(Stdio::null())
                    .stdout(log.try_clone()?)
                    .stderr(log)
                    .spawn()
                    .context("spawning supervisord")?;
                let mut daemon = Daemon {
                    kind,
                    child,
                    api: Api::Rpc(sock),
                    dir: dir.to_path_buf(),
                };
                daemon.wait_rpc_ready()?;
                Ok(daemon)
            }
            Kind::Vigil => {
                let data = dir.join("data");
                let mut conf = format!(
                    "[vigil]\nlisten = \"127.0.0.1:0\"\ndata_dir = {}\nlog_level = \"warn\"\n\n",
                    toml_str(&data.display().to_string())
                );
                match programs {
                    Programs::Target {
                        stampsleep,
                        stamps,
                        startsecs,
                    } => conf.push_str(&format!(
                        "[program.target]\ncommand = {}\nstartsecs = {startsecs}\n",
                        toml_str(&format!("{} {}", stampsleep.display(), stamps.display()))
                    )),
                    Programs::Sleepers { n } => conf.push_str(&format!(
                        "[program.p]\ncommand = \"/bin/sleep 1000000\"\nnumprocs = {n}\n\
                         process_name = \"%(program_name)s_%(process_num)03d\"\n"
                    )),
                }
                let path = dir.join("vigil.toml");
                fs::write(&path, conf)?;
                let mut child = Command::new(&s.vigil)
                    .arg("run")
                    .arg("-c")
                    .arg(&path)
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(log)
                    .spawn()
                    .context("spawning vigil")?;
                let stdout = child.stdout.take().context("vigil stdout")?;
                let (tx, rx) = mpsc::channel();
                // Read the readiness line, then keep draining so vigil never blocks on stdout.
                std::thread::spawn(move || {
                    for line in BufReader::new(stdout).lines() {
                        let Ok(line) = line else { break };
                        let _ = tx.send(line);
                    }
                });
                let mut daemon = Daemon {
                    kind,
                    child,
                    api: Api::Http(SocketAddr::from(([127, 0, 0, 1], 0))),
                    dir: dir.to_path_buf(),
                };
                let deadline = Instant::now() + START_TIMEOUT;
                let addr = loop {
                    if let Some(st) = daemon.child.try_wait()? {
                        bail!(
                            "vigil exited during start-up ({st}):\n{}",
                            daemon.output_tail()
                        );
                    }
                    if Instant::now() > deadline {
                        bail!("vigil did not print its listening line within {START_TIMEOUT:?}");
                    }
                    match rx.recv_timeout(Duration::from_millis(50)) {
                        Ok(line) => {
                            if let Some(url) = line.strip_prefix("vigil: listening on http://") {
                                break url
                                    .trim()
                                    .parse::<SocketAddr>()
                                    .with_context(|| format!("bad listening line {line:?}"))?;
                            }
                        }
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        Err(mpsc::RecvTimeoutError::Disconnected) => {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                };
                daemon.api = Api::Http(addr);
                Ok(daemon)
            }
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn output_tail(&self) -> String {
        let text = fs::read_to_string(self.dir.join("daemon.out")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn wait_rpc_ready(&mut self) -> Result<()> {
        let Api::Rpc(sock) = &self.api else {
            return Ok(());
        };
        let sock = sock.clone();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(st) = self.child.try_wait()? {
                bail!(
                    "{} exited during start-up ({st}):\n{}",
                    self.kind.name(),
                    self.output_tail()
                );
            }
            if let Ok(reply) = xmlrpc(&sock, "supervisor.getState", &[])
                && xml_member_int(&reply, "statecode") == Some(1)
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("supervisord did not answer getState=RUNNING within {START_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The pid of program `target` if the daemon says it is RUNNING.
    fn running_pid(&self, name: &str) -> Result<Option<i32>> {
        match &self.api {
            Api::Rpc(sock) => {
                let reply = xmlrpc(sock, "supervisor.getProcessInfo", &[name])?;
                let state = xml_member_int(&reply, "state");
                Ok(match state {
                    Some(20) => xml_member_int(&reply, "pid").map(|p| p as i32),
                    _ => None,
                })
            }
            Api::Http(addr) => {
                let body = http_get(*addr, "/api/programs")?;
                let v: serde_json::Value =
                    serde_json::from_str(&body).context("GET /api/programs: not JSON")?;
                let progs = v["programs"]
                    .as_array()
                    .context("GET /api/programs: no programs array")?;
                Ok(progs
                    .iter()
                    .find(|p| p["name"] == name)
                    .filter(|p| p["state"] == "RUNNING")
                    .and_then(|p| p["pid"].as_i64())
                    .map(|p| p as i32))
            }
        }
    }

    /// SIGTERM, wait for a clean exit; SIGKILL after 30 s.
    fn stop(&mut self) -> Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        let _ = kill(Pid::from_raw(self.pid()), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(st) = self.child.try_wait()? {
                if !st.success() {
                    println!("  note: {} exited with {st} on SIGTERM", self.kind.name());
                }
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        bail!("{} did not exit within 30 s of SIGTERM", self.kind.name())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("  warning: {e:#}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Minimal clients (std only): HTTP/1.1 GET over TCP, XML-RPC over a unix socket.

fn split_response(raw: &str, what: &str) -> Result<(String, String)> {
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .with_context(|| format!("{what}: malformed HTTP response"))?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        bail!("{what}: {status}");
    }
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if !chunked {
        return Ok((head.to_string(), body.to_string()));
    }
    let mut out = String::new();
    let mut rest = body;
    loop {
        let (size, tail) = rest
            .split_once("\r\n")
            .with_context(|| format!("{what}: bad chunk"))?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .with_context(|| format!("{what}: bad chunk size"))?;
        if size == 0 {
            break;
        }
        let chunk = tail
            .get(..size)
            .with_context(|| format!("{what}: short chunk"))?;
        out.push_str(chunk);
        rest = tail.get(size + 2..).unwrap_or("");
    }
    Ok((head.to_string(), out))
}

fn http_get(addr: SocketAddr, path: &str) -> Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    Ok(split_response(&raw, &format!("GET {path}"))?.1)
}

fn xmlrpc(sock: &Path, method: &str, string_params: &[&str]) -> Result<String> {
    let params: String = string_params
        .iter()
        .map(|p| format!("<param><value><string>{p}</string></value></param>"))
        .collect();
    common::xmlrpc(sock, method, &params, Duration::from_secs(5))
}

/// The integer value of struct member `name` in an XML-RPC reply.
fn xml_member_int(xml: &str, name: &str) -> Option<i64> {
    let after = xml.split_once(&format!("<name>{name}</name>"))?.1;
    let value = after.split_once("<value>")?.1.trim_start();
    // `<int>20</int>` or `<i4>20</i4>`
    let inner = value.strip_prefix('<')?.split_once('>')?.1;
    inner.split('<').next()?.trim().parse().ok()
}

// ---------------------------------------------------------------------------------------
// (a) respawn latency

struct LatencyCase {
    kind: Kind,
    startsecs: u32,
    samples: Vec<f64>,
    failures: usize,
    load: String,
}

/// Complete `pid mono real` lines of the stamp file.
fn read_stamps(path: &Path) -> Vec<(i32, i128)> {
    let Ok(text) = fs::read_to_string(path) else {
        return Vec::new();
    };
    text.split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let pid = f.next()?.parse().ok()?;
            let mono = f.next()?.parse().ok()?;
            Some((pid, mono))
        })
        .collect()
}

fn latency_case(
    s: &Settings,
    clock: &Clock,
    kind: Kind,
    startsecs: u32,
    dir: &Path,
) -> Result<LatencyCase> {
    let load = loadavg();
    println!(
        "\n== (a) respawn latency: {} startsecs={startsecs}, {} kills (load {load})",
        kind.name(),
        s.kills
    );
    fs::create_dir_all(dir)?;
    let stamps = dir.join("stamps.txt");
    let mut daemon = Daemon::start(
        s,
        kind,
        dir,
        &Programs::Target {
            stampsleep: &s.stampsleep,
            stamps: &stamps,
            startsecs,
        },
    )?;
    // Long enough that the kill lands in RUNNING, not STARTING.
    let min_up_ns: i128 = if startsecs == 0 {
        300_000_000
    } else {
        i128::from(startsecs) * 1_000_000_000 + 200_000_000
    };
    let mut samples = Vec::new();
    let mut failures = 0;
    for trial in 1..=s.kills {
        // Wait for a settled child: alive, up >= min_up, and RUNNING with that pid.
        let deadline = Instant::now() + START_TIMEOUT + Duration::from_secs(u64::from(startsecs));
        let (n0, pid) = loop {
            if let Some(st) = daemon.child.try_wait()? {
                bail!("{} died during the latency run ({st})", kind.name());
            }
            let all = read_stamps(&stamps);
            if let Some(&(pid, mono)) = all.last()
                && Path::new(&format!("/proc/{pid}")).exists()
                && clock.mono_ns() - mono >= min_up_ns
                && daemon.running_pid("target")? == Some(pid)
            {
                break (all.len(), pid);
            }
            if Instant::now() > deadline {
                bail!(
                    "{}: target not RUNNING within {:?} (trial {trial})\n{}",
                    kind.name(),
                    START_TIMEOUT,
                    daemon.output_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        std::thread::sleep(Duration::from_secs_f64(rand::random::<f64>()));
        let t0 = clock.mono_ns();
        kill(Pid::from_raw(pid), Signal::SIGKILL).context("kill(SIGKILL)")?;
        let deadline = Instant::now() + RESPAWN_TIMEOUT;
        let respawn = loop {
            let all = read_stamps(&stamps);
            if all.len() > n0
                && let Some(&(new_pid, mono)) = all.last()
                && new_pid != pid
            {
                break Some((new_pid, mono));
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        match respawn {
            Some((new_pid, mono)) => {
                let ms = (mono - t0) as f64 / 1e6;
                samples.push(ms);
                println!("  trial {trial:2}: pid {pid} -> {new_pid}  {ms:9.3} ms");
            }
            None => {
                failures += 1;
                println!(
                    "  trial {trial:2}: pid {pid} killed, NO respawn within {RESPAWN_TIMEOUT:?}"
                );
            }
        }
    }
    daemon.stop()?;
    let st = Stats::of(&samples);
    println!(
        "  {} startsecs={startsecs}: n={} median {:.3} ms, p95 {:.3}, p99 {:.3}, min {:.3}, max {:.3}, failures {failures}",
        kind.name(),
        samples.len(),
        st.median,
        st.p95,
        st.p99,
        st.min,
        st.max
    );
    Ok(LatencyCase {
        kind,
        startsecs,
        samples,
        failures,
        load,
    })
}

/// Spawn → exec stamp when the harness spawns the helper itself (std's Command, which
/// uses posix_spawn / vfork when it can): the machine's floor for any supervisor.
fn spawn_floor(s: &Settings, clock: &Clock, dir: &Path) -> Result<Vec<f64>> {
    println!(
        "\n== reference: fork+exec of stampsleep by the harness, {} spawns",
        s.kills
    );
    fs::create_dir_all(dir)?;
    let stamps = dir.join("stamps.txt");
    let mut samples = Vec::new();
    for _ in 0..s.kills {
        let n0 = read_stamps(&stamps).len();
        let t0 = clock.mono_ns();
        let mut child = Command::new(&s.stampsleep)
            .arg(&stamps)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawning stampsleep")?;
        let deadline = Instant::now() + RESPAWN_TIMEOUT;
        let stamp = loop {
            if let Some(&(_, mono)) = read_stamps(&stamps).get(n0) {
                break Some(mono);
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let _ = child.kill();
        let _ = child.wait();
        let mono = stamp.context("stampsleep spawned by the harness never stamped")?;
        samples.push((mono - t0) as f64 / 1e6);
        std::thread::sleep(Duration::from_millis(50));
    }
    let st = Stats::of(&samples);
    println!(
        "  median {:.3} ms, p95 {:.3}, min {:.3}, max {:.3}",
        st.median, st.p95, st.min, st.max
    );
    Ok(samples)
}

// ---------------------------------------------------------------------------------------
// (b) memory and fds, (c) idle CPU and wake-ups

struct Idle {
    kind: Kind,
    startup_ms: f64,
    rss_kb: u64,
    hwm_kb: u64,
    pss_kb: u64,
    fds: usize,
    threads: usize,
    window_s: f64,
    cpu_ms: f64,
    ticks: u64,
    vol: u64,
    invol: u64,
    wakeups_by_thread: Vec<(String, u64)>,
    threads_lost: usize,
    children_after: usize,
    load: String,
}

fn children(pid: i32) -> usize {
    let mut n = 0;
    if let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(c) = fs::read_to_string(t.path().join("children")) {
                n += c.split_whitespace().count();
            }
        }
    }
    n
}

fn status_field(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Per thread: (comm, on-CPU ns from schedstat, voluntary, involuntary switches).
/// /proc/PID/status and /proc/PID/schedstat describe the main thread only, so the
/// counters are read for every task and summed.
fn thread_counters(pid: i32) -> Result<HashMap<String, (String, u64, u64, u64)>> {
    let mut out = HashMap::new();
    for t in fs::read_dir(format!("/proc/{pid}/task"))?.flatten() {
        let p = t.path();
        let (Ok(status), Ok(sched)) = (
            fs::read_to_string(p.join("status")),
            fs::read_to_string(p.join("schedstat")),
        ) else {
            continue;
        };
        let cpu = sched
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let comm = fs::read_to_string(p.join("comm")).unwrap_or_default();
        out.insert(
            t.file_name().to_string_lossy().into_owned(),
            (
                comm.trim().to_string(),
                cpu,
                status_field(&status, "voluntary_ctxt_switches"),
                status_field(&status, "nonvoluntary_ctxt_switches"),
            ),
        );
    }
    Ok(out)
}

/// utime + stime of the whole process, in clock ticks.
fn process_ticks(pid: i32) -> Result<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let f: Vec<&str> = stat
        .rsplit_once(')')
        .context("bad /proc/PID/stat")?
        .1
        .split_whitespace()
        .collect();
    let field = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Ok(field(11) + field(12))
}

fn idle_case(s: &Settings, kind: Kind, dir: &Path) -> Result<Idle> {
    let load = loadavg();
    println!(
        "\n== (b)+(c) {} with {} programs: memory, fds, {} s idle window (load {load})",
        kind.name(),
        s.programs,
        s.idle_secs
    );
    let t_start = Instant::now();
    let mut daemon = Daemon::start(s, kind, dir, &Programs::Sleepers { n: s.programs })?;
    let pid = daemon.pid();
    let deadline = Instant::now() + Duration::from_secs(120);
    while children(pid) < s.programs {
        if let Some(st) = daemon.child.try_wait()? {
            bail!("{} exited while starting programs ({st})", kind.name());
        }
        if Instant::now() > deadline {
            bail!(
                "{}: only {} of {} children after 120 s",
                kind.name(),
                children(pid),
                s.programs
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let startup_ms = t_start.elapsed().as_secs_f64() * 1e3;
    println!(
        "  {} children after {startup_ms:.0} ms; settling {} s",
        s.programs, s.settle_secs
    );
    std::thread::sleep(Duration::from_secs_f64(s.settle_secs));

    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let fds = fs::read_dir(format!("/proc/{pid}/fd"))?.count();
    let rss_kb = status_field(&status, "VmRSS");
    let hwm_kb = status_field(&status, "VmHWM");
    let pss_kb = status_field(&rollup, "Pss");
    let threads = status_field(&status, "Threads") as usize;
    println!(
        "  VmRSS {rss_kb} kB, VmHWM {hwm_kb} kB, Pss {pss_kb} kB, threads {threads}, fds {fds}"
    );

    let a = thread_counters(pid)?;
    let ticks_a = process_ticks(pid)?;
    let w0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(s.idle_secs));
    let b = thread_counters(pid)?;
    let ticks_b = process_ticks(pid)?;
    let window_s = w0.elapsed().as_secs_f64();

    let (mut cpu_ns, mut vol, mut invol) = (0u64, 0u64, 0u64);
    let mut by_thread = Vec::new();
    for (tid, (comm, c1, v1, i1)) in &b {
        let (c0, v0, i0) = a.get(tid).map_or((0, 0, 0), |(_, c, v, i)| (*c, *v, *i));
        cpu_ns += c1.saturating_sub(c0);
        vol += v1.saturating_sub(v0);
        invol += i1.saturating_sub(i0);
        by_thread.push((format!("{comm}[{tid}]"), v1.saturating_sub(v0)));
    }
    by_thread.sort();
    let threads_lost = a.keys().filter(|t| !b.contains_key(*t)).count();
    let children_after = children(pid);
    let ticks = ticks_b.saturating_sub(ticks_a);
    let cpu_ms = cpu_ns as f64 / 1e6;
    println!(
        "  window {window_s:.1} s: on-CPU {cpu_ms:.2} ms ({:.4} % of a core), {ticks} ticks, \
         voluntary switches {vol}, involuntary {invol}, children after {children_after}",
        cpu_ms / (window_s * 1e3) * 100.0
    );
    println!(
        "  wake-ups by thread: {}",
        by_thread
            .iter()
            .map(|(t, v)| format!("{t}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if threads_lost > 0 {
        println!(
            "  note: {threads_lost} thread(s) ended during the window (their counts are lost)"
        );
    }
    let t_stop = Instant::now();
    daemon.stop()?;
    println!(
        "  stopped {} programs in {:.0} ms",
        s.programs,
        t_stop.elapsed().as_secs_f64() * 1e3
    );
    Ok(Idle {
        kind,
        startup_ms,
        rss_kb,
        hwm_kb,
        pss_kb,
        fds,
        threads,
        window_s,
        cpu_ms,
        ticks,
        vol,
        invol,
        wakeups_by_thread: by_thread,
        threads_lost,
        children_after,
        load,
    })
}

// ---------------------------------------------------------------------------------------
// Report

fn ratio(sup: f64, vig: f64) -> String {
    if vig > 0.0 {
        let r = sup / vig;
        if r >= 100.0 {
            format!("{r:.0}×")
        } else if r >= 10.0 {
            format!("{r:.1}×")
        } else {
            format!("{r:.2}×")
        }
    } else if sup > 0.0 {
        "∞ (vigil 0)".into()
    } else {
        "— (both 0)".into()
    }
}

fn report(
    s: &Settings,
    floor: &[f64],
    cases: &[LatencyCase],
    idles: &[Idle],
    load0: &str,
    load1: &str,
) {
    println!("\n== results (load average at start: {load0}; at end: {load1})\n");
    println!(
        "(a) respawn latency, SIGKILL of a RUNNING child → replacement exec'd, ms, {} kills per row\n",
        s.kills
    );
    println!(
        "| startsecs | daemon | median | p95 | p99 | min | max | mean ± sd | failed | load at start |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for c in cases {
        let st = Stats::of(&c.samples);
        println!(
            "| {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} ± {:.3} | {} | {} |",
            c.startsecs,
            c.kind.name(),
            st.median,
            st.p95,
            st.p99,
            st.min,
            st.max,
            st.mean,
            st.sd,
            c.failures,
            c.load
        );
    }
    let fl = Stats::of(floor);
    println!(
        "| – | reference: the harness itself spawns stampsleep (fork+exec floor, no daemon) | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} ± {:.3} | 0 | |",
        fl.median, fl.p95, fl.p99, fl.min, fl.max, fl.mean, fl.sd
    );
    for startsecs in [0u32, 1] {
        let find = |k: Kind| {
            cases
                .iter()
                .find(|c| c.kind == k && c.startsecs == startsecs)
                .map(|c| Stats::of(&c.samples))
        };
        if let (Some(sv), Some(vg)) = (find(Kind::Supervisord), find(Kind::Vigil)) {
            println!(
                "| {startsecs} | **ratio supervisord/vigil** | {} | {} | {} | {} | {} | | | |",
                ratio(sv.median, vg.median),
                ratio(sv.p95, vg.p95),
                ratio(sv.p99, vg.p99),
                ratio(sv.min, vg.min),
                ratio(sv.max, vg.max)
            );
        }
    }

    let (Some(sv), Some(vg)) = (
        idles.iter().find(|i| i.kind == Kind::Supervisord),
        idles.iter().find(|i| i.kind == Kind::Vigil),
    ) else {
        return;
    };
    println!(
        "\n(b) memory and fds, (c) idle cost: {} programs `/bin/sleep 1000000`, idle window {:.1} s / {:.1} s\n",
        s.programs, sv.window_s, vg.window_s
    );
    println!("| metric | supervisord | vigil | supervisord/vigil |");
    println!("|---|---:|---:|---:|");
    let row = |name: &str, a: f64, b: f64, prec: usize| {
        println!(
            "| {name} | {a:.prec$} | {b:.prec$} | {} |",
            ratio(a, b),
            prec = prec
        );
    };
    row("VmRSS (kB)", sv.rss_kb as f64, vg.rss_kb as f64, 0);
    row("Pss (kB)", sv.pss_kb as f64, vg.pss_kb as f64, 0);
    row("VmHWM (kB)", sv.hwm_kb as f64, vg.hwm_kb as f64, 0);
    row("open fds", sv.fds as f64, vg.fds as f64, 0);
    row("threads", sv.threads as f64, vg.threads as f64, 0);
    row(
        "on-CPU in window (ms, schedstat, all threads)",
        sv.cpu_ms,
        vg.cpu_ms,
        2,
    );
    row(
        "CPU (% of one core)",
        sv.cpu_ms / (sv.window_s * 10.0),
        vg.cpu_ms / (vg.window_s * 10.0),
        4,
    );
    row(
        "utime+stime ticks in window",
        sv.ticks as f64,
        vg.ticks as f64,
        0,
    );
    row(
        "voluntary ctx switches (wake-ups) in window",
        sv.vol as f64,
        vg.vol as f64,
        0,
    );
    row(
        "involuntary ctx switches in window",
        sv.invol as f64,
        vg.invol as f64,
        0,
    );
    row(
        &format!("time to {} children (ms)", s.programs),
        sv.startup_ms,
        vg.startup_ms,
        0,
    );
    println!(
        "\nchildren at end of window: supervisord {}, vigil {}; threads ended during the window: {} / {}; \
         load at start: {} / {}",
        sv.children_after, vg.children_after, sv.threads_lost, vg.threads_lost, sv.load, vg.load
    );
    println!(
        "vigil wake-ups by thread: {}",
        vg.wakeups_by_thread
            .iter()
            .map(|(t, v)| format!("{t}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // The aims of issue 2.
    let vig_s0 = cases
        .iter()
        .filter(|c| c.kind == Kind::Vigil)
        .map(|c| Stats::of(&c.samples).median)
        .fold(0.0f64, f64::max);
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!("\naims (issue 2):");
    println!(
        "  respawn median under 5 ms (worst startsecs case {vig_s0:.3} ms): {}",
        verdict(vig_s0 < 5.0)
    );
    println!(
        "  RSS under a third of supervisord's ({} kB vs {} kB / 3 = {} kB): {}",
        vg.rss_kb,
        sv.rss_kb,
        sv.rss_kb / 3,
        verdict(vg.rss_kb * 3 < sv.rss_kb)
    );
    println!(
        "  no periodic wake-ups when idle ({} voluntary switches in {:.0} s): {}",
        vg.vol,
        vg.window_s,
        verdict(vg.vol == 0)
    );
}
