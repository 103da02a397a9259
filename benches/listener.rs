//! Event listeners: vigil next to supervisord 4.3.0, in one run, on the same machine.
//!
//!     cargo bench --bench listener
//!
//! Both daemons run the **same** `supervisord.conf` (only the directory differs; vigil runs it
//! as `vigil run -c supervisord.conf`), with the **same** Python listener (the venv's
//! interpreter, `events=PROCESS_STATE,REMOTE_COMMUNICATION`, `buffer_size` large enough that
//! supervisord never discards). The listener takes `time.monotonic_ns()` (CLOCK_MONOTONIC) as
//! soon as an event's header line arrives, appends `<ns> <eventname> <serial> <payload>` to a
//! file with one `write(2)`, and answers `RESULT 2\nOK` + `READY\n` at once.
//!
//! (a) delivery latency: program `target` (`sleep`, autorestart, startsecs=0) is RUNNING and
//!     its RUNNING event has reached the listener; the harness sleeps a random 0–0.5 s, takes
//!     t0 on CLOCK_MONOTONIC, SIGKILLs it. latency = arrival of its PROCESS_STATE_EXITED at
//!     the listener − t0. BENCH_TRIALS trials per daemon, alternating between the daemons.
//! (b) throughput: one `system.multicall` of BENCH_BURST `supervisor.sendRemoteCommEvent`
//!     calls; events/s = BENCH_BURST / (arrival of the last one − t0 taken just before the
//!     request is sent). BENCH_BURSTS bursts per daemon, alternating.
//!
//! (reference) the same listener driven by the harness itself over pipes, interleaved with
//!     the daemons: the floor of (a) and the ceiling of (b) on this machine.
//!
//! Environment knobs: BENCH_TRIALS (40), BENCH_BURST (2000), BENCH_BURSTS (5),
//! BENCH_AUTORESTART (true; `false` leaves the killed target EXITED, so the daemon does not
//! respawn it before notifying, and the harness starts it again), BENCH_KEEP=1 keeps the
//! scratch directory, VIGIL_TEST_VENV (default ./.venv, set up by
//! scripts/setup-test-deps, which this bench runs first).
//!
//! It exits non-zero if a daemon fails to start or an event does not arrive within 15 s.
//! Without `--bench` on the command line (e.g. `cargo test --all-targets`) it does nothing.

mod common;
use common::{Stats, cpu_model, env_or, loadavg};

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::time::{ClockId, clock_gettime};
use nix::unistd::Pid;

const WANT_SUPERVISOR: &str = "4.3.0";
const START_TIMEOUT: Duration = Duration::from_secs(30);
const EVENT_TIMEOUT: Duration = Duration::from_secs(15);

/// The listener, the same file for both daemons.
const LISTENER_PY: &str = r#"import os, sys, time
log = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
inp, out = sys.stdin.buffer, sys.stdout.buffer
out.write(b"READY\n")
out.flush()
while True:
    header = inp.readline()
    t = time.monotonic_ns()
    if not header:
        break
    h = dict(tok.split(b":", 1) for tok in header.split())
    payload = inp.read(int(h[b"len"]))
    os.write(log, b"%d %s %s %s\n" % (t, h[b"eventname"], h[b"serial"], payload.replace(b"\n", b" ")))
    out.write(b"RESULT 2\nOKREADY\n")
    out.flush()
"#;

fn main() -> ExitCode {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("listener bench: skipped (run it with `cargo bench --bench listener`)");
        return ExitCode::SUCCESS;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("listener bench: FAILED: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn mono_ns() -> Result<i128> {
    let t = clock_gettime(ClockId::CLOCK_MONOTONIC).context("clock_gettime")?;
    Ok(i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec()))
}

fn run() -> Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let vigil = PathBuf::from(env!("CARGO_BIN_EXE_vigil"));
    let trials: usize = env_or("BENCH_TRIALS", 40)?;
    let burst: usize = env_or("BENCH_BURST", 2000)?;
    let bursts: usize = env_or("BENCH_BURSTS", 5)?;
    let autorestart: bool = env_or("BENCH_AUTORESTART", true)?;
    if trials == 0 || burst == 0 || bursts == 0 {
        bail!("BENCH_TRIALS, BENCH_BURST and BENCH_BURSTS must be positive");
    }

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
    let python = venv.join("bin/python");
    let out = Command::new(&supervisord).arg("--version").output()?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if version != WANT_SUPERVISOR {
        bail!(
            "{} is {version:?}, want {WANT_SUPERVISOR}",
            supervisord.display()
        );
    }
    let scratch = tempfile::Builder::new()
        .prefix("vigil-bench-listener-")
        .tempdir()?;
    let dir = scratch.path().to_path_buf();
    let listener = dir.join("listener.py");
    fs::write(&listener, LISTENER_PY)?;

    let load0 = loadavg();
    println!(
        "machine: {} CPUs, {}; load {load0}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model()
    );
    println!("supervisord {version}: {}", supervisord.display());
    println!("vigil: {}", vigil.display());
    println!("listener: {} {}", python.display(), listener.display());
    println!("scratch: {}", dir.display());
    println!("trials: {trials}, burst: {burst} events × {bursts}");

    let cmd_sup = vec![
        supervisord.clone().into_os_string(),
        "-n".into(),
        "-c".into(),
    ];
    let cmd_vig = vec![vigil.clone().into_os_string(), "run".into(), "-c".into()];
    let mut daemons = [
        Daemon::start(
            "supervisord",
            &cmd_sup,
            &dir.join("supervisord"),
            &python,
            &listener,
            burst,
            autorestart,
        )?,
        Daemon::start(
            "vigil",
            &cmd_vig,
            &dir.join("vigil"),
            &python,
            &listener,
            burst,
            autorestart,
        )?,
    ];

    // The reference: the harness itself speaks the protocol to the same listener.
    let mut reference = Reference::start(&python, &listener, &dir.join("reference"))?;

    // (a) latency, alternating (supervisord, vigil, reference).
    println!(
        "\n== (a) delivery latency: SIGKILL of RUNNING `target` → PROCESS_STATE_EXITED at the listener"
    );
    let mut lat: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut ref_lat = Vec::new();
    for trial in 1..=trials {
        for (i, d) in daemons.iter_mut().enumerate() {
            let ms = d.latency_trial()?;
            println!("  trial {trial:2} {:<11} {ms:8.3} ms", d.name);
            lat[i].push(ms);
        }
        let ms = reference.latency_trial(trial)?;
        println!("  trial {trial:2} reference   {ms:8.3} ms");
        ref_lat.push(ms);
    }

    // (b) throughput, alternating.
    println!(
        "\n== (b) throughput: {burst} sendRemoteCommEvent in one system.multicall → REMOTE_COMMUNICATION at the listener"
    );
    let mut tput: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut rpc_ms: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut ref_tput = Vec::new();
    for b in 1..=bursts {
        for (i, d) in daemons.iter_mut().enumerate() {
            let (eps, rpc) = d.burst(b, burst)?;
            println!(
                "  burst {b} {:<11} {eps:9.0} events/s (multicall answered after {rpc:.1} ms)",
                d.name
            );
            tput[i].push(eps);
            rpc_ms[i].push(rpc);
        }
        let eps = reference.burst(b, burst)?;
        println!("  burst {b} reference   {eps:9.0} events/s");
        ref_tput.push(eps);
    }
    for d in &mut daemons {
        d.stop()?;
    }
    let load1 = loadavg();

    // Report.
    let (ls, lv) = (Stats::of(&lat[0]), Stats::of(&lat[1]));
    println!("\n== results (load average at start: {load0}; at end: {load1})\n");
    println!(
        "(a) delivery latency, SIGKILL → PROCESS_STATE_EXITED read by the listener, ms, {trials} trials each\n"
    );
    println!("| daemon | median | p95 | p99 | min | max | mean ± sd |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, s) in [("supervisord", &ls), ("vigil", &lv)] {
        println!(
            "| {name} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} ± {:.3} |",
            s.median, s.p95, s.p99, s.min, s.max, s.mean, s.sd
        );
    }
    let lr = Stats::of(&ref_lat);
    println!(
        "| reference: the harness writes the event (pipe + listener wake-up) | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} ± {:.3} |",
        lr.median, lr.p95, lr.p99, lr.min, lr.max, lr.mean, lr.sd
    );
    println!(
        "| **supervisord/vigil** | {} | {} | {} | {} | {} | |",
        ratio(ls.median, lv.median),
        ratio(ls.p95, lv.p95),
        ratio(ls.p99, lv.p99),
        ratio(ls.min, lv.min),
        ratio(ls.max, lv.max)
    );
    let (ts, tv) = (Stats::of(&tput[0]), Stats::of(&tput[1]));
    let (rs, rv) = (Stats::of(&rpc_ms[0]), Stats::of(&rpc_ms[1]));
    println!(
        "\n(b) throughput, {burst} REMOTE_COMMUNICATION events per burst, {bursts} bursts each (events/s; higher is better)\n"
    );
    println!("| daemon | median | min | max | multicall answered (median ms) |");
    println!("|---|---:|---:|---:|---:|");
    for (name, s, r) in [("supervisord", &ts, &rs), ("vigil", &tv, &rv)] {
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} | {:.1} |",
            s.median, s.min, s.max, r.median
        );
    }
    let tr = Stats::of(&ref_tput);
    println!(
        "| reference: the harness as the daemon (the listener's ceiling) | {:.0} | {:.0} | {:.0} | |",
        tr.median, tr.min, tr.max
    );
    println!(
        "| **vigil/supervisord** | {} | {} | {} | |",
        ratio(tv.median, ts.median),
        ratio(tv.min, ts.min),
        ratio(tv.max, ts.max)
    );

    if std::env::var("BENCH_KEEP").is_ok_and(|v| v == "1") {
        let kept = scratch.keep();
        println!("scratch kept: {}", kept.display());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// A daemon with the listener

/// One line the listener wrote.
struct Arrival {
    ns: i128,
    event: String,
    payload: String,
}

struct Daemon {
    name: &'static str,
    child: Child,
    dir: PathBuf,
    sock: PathBuf,
    arrivals: PathBuf,
    /// How far `arrivals` has been read, and the lines not consumed yet.
    offset: u64,
    pending: Vec<Arrival>,
    autorestart: bool,
}

impl Daemon {
    fn start(
        name: &'static str,
        cmd: &[std::ffi::OsString],
        dir: &Path,
        python: &Path,
        listener: &Path,
        burst: usize,
        autorestart: bool,
    ) -> Result<Daemon> {
        fs::create_dir_all(dir.join("logs"))?;
        let d = dir.display();
        let arrivals = dir.join("arrivals.txt");
        let sock = dir.join("supervisor.sock");
        let conf = format!(
            "[unix_http_server]\nfile={d}/supervisor.sock\n\n\
             [supervisord]\nlogfile={d}/supervisord.log\npidfile={d}/supervisord.pid\n\
             childlogdir={d}/logs\nvigil_listen=127.0.0.1:0\nvigil_data_dir={d}/vigil-data\n\n\
             [rpcinterface:supervisor]\n\
             supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n\
             [supervisorctl]\nserverurl=unix://{d}/supervisor.sock\n\n\
             [program:target]\ncommand=/bin/sleep 1000000\nstartsecs=0\nautorestart={autorestart}\n\n\
             [eventlistener:stamp]\ncommand={} {} {}\n\
             events=PROCESS_STATE,REMOTE_COMMUNICATION\nbuffer_size={}\n",
            python.display(),
            listener.display(),
            arrivals.display(),
            burst + 100
        );
        let path = dir.join("supervisord.conf");
        fs::write(&path, conf)?;
        let log = fs::File::create(dir.join("daemon.out"))?;
        let (prog, args) = cmd.split_first().context("empty command")?;
        let child = Command::new(prog)
            .args(args)
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning {name}"))?;
        let mut d = Daemon {
            name,
            child,
            dir: dir.to_path_buf(),
            sock,
            arrivals,
            offset: 0,
            pending: Vec::new(),
            autorestart,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(st) = d.child.try_wait()? {
                bail!("{name} exited during start-up ({st}):\n{}", d.output_tail());
            }
            if let Ok(reply) = xmlrpc(&d.sock, "supervisor.getState", "")
                && member_int(&reply, "statecode") == Some(1)
            {
                break;
            }
            if Instant::now() > deadline {
                bail!("{name} did not answer getState=RUNNING within {START_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(d)
    }

    fn output_tail(&self) -> String {
        let text = fs::read_to_string(self.dir.join("daemon.out")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Newly completed lines of the arrivals file.
    fn read_arrivals(&mut self) -> Result<()> {
        let Ok(mut f) = fs::File::open(&self.arrivals) else {
            return Ok(());
        };
        f.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        let Some(end) = buf.iter().rposition(|b| *b == b'\n') else {
            return Ok(());
        };
        self.offset += end as u64 + 1;
        for line in String::from_utf8_lossy(&buf[..=end]).lines() {
            let mut f = line.splitn(4, ' ');
            let (Some(ns), Some(event), Some(_serial)) = (f.next(), f.next(), f.next()) else {
                bail!("bad arrival line {line:?}");
            };
            self.pending.push(Arrival {
                ns: ns
                    .parse()
                    .with_context(|| format!("bad arrival line {line:?}"))?,
                event: event.to_string(),
                payload: f.next().unwrap_or_default().to_string(),
            });
        }
        Ok(())
    }

    /// Wait until `done` says so of the arrivals so far (consuming those it returns `true` at
    /// and before), polling every `poll`.
    fn wait_for(
        &mut self,
        what: &str,
        poll: Duration,
        mut pick: impl FnMut(&Arrival) -> bool,
    ) -> Result<Arrival> {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        loop {
            self.read_arrivals()?;
            if let Some(i) = self.pending.iter().position(&mut pick) {
                let a = self.pending.remove(i);
                self.pending.drain(..i);
                return Ok(a);
            }
            if let Some(st) = self.child.try_wait()? {
                bail!("{} died ({st}) waiting for {what}", self.name);
            }
            if Instant::now() > deadline {
                bail!(
                    "{}: no {what} within {EVENT_TIMEOUT:?}\n{}",
                    self.name,
                    self.output_tail()
                );
            }
            std::thread::sleep(poll);
        }
    }

    fn target_pid(&self) -> Result<Option<i32>> {
        let reply = xmlrpc(
            &self.sock,
            "supervisor.getProcessInfo",
            "<param><value><string>target</string></value></param>",
        )?;
        Ok(match member_int(&reply, "state") {
            Some(20) => member_int(&reply, "pid").map(|p| p as i32),
            _ => None,
        })
    }

    fn latency_trial(&mut self) -> Result<f64> {
        let deadline = Instant::now() + START_TIMEOUT;
        let pid = loop {
            if let Some(pid) = self.target_pid()? {
                break pid;
            }
            if !self.autorestart {
                // EXITED after the last kill: start it again (waits until RUNNING).
                xmlrpc(
                    &self.sock,
                    "supervisor.startProcess",
                    "<param><value><string>target</string></value></param>",
                )?;
                continue;
            }
            if Instant::now() > deadline {
                bail!("{}: target not RUNNING within {START_TIMEOUT:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // Its RUNNING event has reached the listener (so the listener is idle).
        let running = format!("pid:{pid}");
        self.wait_for("the RUNNING event", Duration::from_millis(5), |a| {
            a.event == "PROCESS_STATE_RUNNING"
                && a.payload.contains("processname:target")
                && a.payload.split(' ').any(|t| t == running)
        })?;
        self.read_arrivals()?;
        self.pending.clear();
        std::thread::sleep(Duration::from_secs_f64(0.2 + rand::random::<f64>() * 0.3));
        let t0 = mono_ns()?;
        kill(Pid::from_raw(pid), Signal::SIGKILL).context("kill(SIGKILL)")?;
        let exited = self.wait_for("PROCESS_STATE_EXITED", Duration::from_millis(1), |a| {
            a.event == "PROCESS_STATE_EXITED" && a.payload.split(' ').any(|t| t == running)
        })?;
        Ok((exited.ns - t0) as f64 / 1e6)
    }

    /// One burst: (events/s, ms until the multicall was answered).
    fn burst(&mut self, b: usize, n: usize) -> Result<(f64, f64)> {
        self.read_arrivals()?;
        self.pending.clear();
        let mut calls = String::with_capacity(n * 200);
        for i in 0..n {
            calls.push_str(&format!(
                "<value><struct>\
                 <member><name>methodName</name><value><string>supervisor.sendRemoteCommEvent</string></value></member>\
                 <member><name>params</name><value><array><data>\
                 <value><string>bench</string></value><value><string>b{b}-{i}</string></value>\
                 </data></array></value></member></struct></value>"
            ));
        }
        let params = format!("<param><value><array><data>{calls}</data></array></value></param>");
        let t0 = mono_ns()?;
        let started = Instant::now();
        let reply = xmlrpc(&self.sock, "system.multicall", &params)?;
        let rpc_ms = started.elapsed().as_secs_f64() * 1e3;
        let trues = reply.matches("<boolean>1</boolean>").count();
        if trues != n {
            bail!(
                "{}: multicall answered {trues} of {n} calls with true",
                self.name
            );
        }
        let last = format!("b{b}-{}", n - 1);
        let mut seen = 0usize;
        let deadline = Instant::now() + EVENT_TIMEOUT;
        let last_ns = loop {
            self.read_arrivals()?;
            let mut done = None;
            for a in self.pending.drain(..) {
                if a.event == "REMOTE_COMMUNICATION" {
                    seen += 1;
                    if a.payload.ends_with(&last) {
                        done = Some(a.ns);
                    }
                }
            }
            if let Some(ns) = done {
                break ns;
            }
            if Instant::now() > deadline {
                bail!(
                    "{}: {seen} of {n} events within {EVENT_TIMEOUT:?}",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        if seen != n {
            bail!(
                "{}: {seen} of {n} events arrived (in order) by the last one",
                self.name
            );
        }
        let secs = (last_ns - t0) as f64 / 1e9;
        Ok((n as f64 / secs, rpc_ms))
    }

    fn stop(&mut self) -> Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        bail!("{} did not exit within 30 s of SIGTERM", self.name)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("  warning: {e:#}");
        }
    }
}

/// The same listener driven by the harness over pipes, as an ideal daemon would: per event,
/// write header + payload and read `RESULT 2\nOKREADY\n`. Latency: t0 taken just before the
/// write → the listener's arrival stamp. Throughput: `burst` events back to back.
struct Reference {
    child: Child,
    tx: std::process::ChildStdin,
    rx: std::process::ChildStdout,
    arrivals: PathBuf,
    serial: u64,
}

impl Reference {
    fn start(python: &Path, listener: &Path, dir: &Path) -> Result<Reference> {
        fs::create_dir_all(dir)?;
        let arrivals = dir.join("arrivals.txt");
        let mut child = Command::new(python)
            .arg(listener)
            .arg(&arrivals)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("spawning the listener")?;
        let (Some(tx), Some(rx)) = (child.stdin.take(), child.stdout.take()) else {
            bail!("listener: no pipes");
        };
        let mut r = Reference {
            child,
            tx,
            rx,
            arrivals,
            serial: 0,
        };
        r.expect(b"READY\n")?;
        Ok(r)
    }

    fn expect(&mut self, want: &[u8]) -> Result<()> {
        let mut got = vec![0u8; want.len()];
        self.rx.read_exact(&mut got)?;
        if got != want {
            bail!("listener said {:?}", String::from_utf8_lossy(&got));
        }
        Ok(())
    }

    /// One event, lock-step: written, then its result and the next READY read.
    fn send(&mut self, tag: &str) -> Result<()> {
        self.serial += 1;
        let payload = format!("type:bench\n{tag}");
        let msg = format!(
            "ver:3.0 server:supervisor serial:{s} pool:stamp poolserial:{s} \
             eventname:REMOTE_COMMUNICATION len:{}\n{payload}",
            payload.len(),
            s = self.serial
        );
        self.tx.write_all(msg.as_bytes())?;
        self.tx.flush()?;
        self.expect(b"RESULT 2\nOKREADY\n")
    }

    /// The arrival stamp of the event tagged `tag` (the listener has answered it already).
    fn arrival(&self, tag: &str) -> Result<i128> {
        let text = fs::read_to_string(&self.arrivals)?;
        let suffix = format!(" {tag}");
        let line = text
            .lines()
            .rev()
            .find(|l| l.ends_with(&suffix))
            .with_context(|| format!("reference: {tag} not in the arrivals"))?;
        line.split(' ')
            .next()
            .and_then(|ns| ns.parse().ok())
            .with_context(|| format!("bad arrival line {line:?}"))
    }

    fn latency_trial(&mut self, trial: usize) -> Result<f64> {
        std::thread::sleep(Duration::from_secs_f64(0.2 + rand::random::<f64>() * 0.3));
        let tag = format!("lat-{trial}");
        let t0 = mono_ns()?;
        self.send(&tag)?;
        Ok((self.arrival(&tag)? - t0) as f64 / 1e6)
    }

    fn burst(&mut self, b: usize, n: usize) -> Result<f64> {
        let t0 = mono_ns()?;
        for i in 0..n {
            self.send(&format!("b{b}-{i}"))?;
        }
        let secs = (self.arrival(&format!("b{b}-{}", n - 1))? - t0) as f64 / 1e9;
        Ok(n as f64 / secs)
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// XML-RPC over the unix socket (std only)

fn xmlrpc(sock: &Path, method: &str, params: &str) -> Result<String> {
    common::xmlrpc(sock, method, params, Duration::from_secs(30))
}

/// The integer value of struct member `name` in an XML-RPC reply.
fn member_int(xml: &str, name: &str) -> Option<i64> {
    let after = xml.split_once(&format!("<name>{name}</name>"))?.1;
    let value = after.split_once("<value>")?.1.trim_start();
    let inner = value.strip_prefix('<')?.split_once('>')?.1;
    inner.split('<').next()?.trim().parse().ok()
}

// ---------------------------------------------------------------------------------------
// Statistics

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        let r = a / b;
        if r >= 100.0 {
            format!("{r:.0}×")
        } else if r >= 10.0 {
            format!("{r:.1}×")
        } else {
            format!("{r:.2}×")
        }
    } else {
        "—".into()
    }
}
