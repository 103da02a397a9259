//! Background jobs: admission latency and queue throughput, vigil vs pueue 4.0.4 and the
//! machine's fork/exec floor, in one run.
//!
//!     nice cargo bench --bench jobs
//!
//! (a) **exit → next job's first instruction.** One job slot; BENCH_LAT (default 300) stamp
//!     jobs queued behind a blocker, which is then canceled. Each job is this bench binary run
//!     as `--stamp FILE`: it reads CLOCK_MONOTONIC first thing in `main` and again just before
//!     it exits. latency = start(job i+1) − end(job i). The floor: the bench itself runs the
//!     same stamp program back to back (spawn, wait, spawn): a bare fork/exec supervisor.
//! (b) **10 000 trivial jobs** (BENCH_JOBS), parallelism 4 in both: vigil (argv `true`) and
//!     pueue 4.0.4 (`true`, run by pueue through `sh -c`). Each queue is held (vigil: a
//!     blocker job holding all 4 cores; pueue: `pueue pause`) while the jobs are submitted
//!     (vigil: HTTP POST on one keep-alive connection; pueue: one `pueue add` per job, its
//!     only interface), then released; drained = all finished. Reported: submit time, drain
//!     time, jobs/s, the ratio.
//! (c) **daemon memory per queued job**: VmRSS of the daemon before and after queueing them.
//!
//! Knobs: BENCH_LAT, BENCH_JOBS, BENCH_PARALLEL, BENCH_CGROUPS=none (jobs without cgroups), and BENCH_PEER=0 to leave pueue out (a
//! quick run of vigil against the floors). (b) also runs a throughput floor: BENCH_PARALLEL
//! threads of the bench spawning `true` back to back. vigil's drain is awaited by polling
//! the last job (`GET /api/jobs/{id}`), not the whole queue listing.
//!
//! pueue 4.0.4 is installed by the bench (`cargo install pueue --version 4.0.4 --locked`
//! into target/bench-peers) when missing. Without `--bench` it does nothing.

#[path = "common/mod.rs"]
#[allow(dead_code)] // shared with the other benches; this one uses part of it
mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::{Stats, cpu_model, env_or, loadavg};

fn mono_ns() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("clock");
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

/// The stamp job: `start end` (ns, CLOCK_MONOTONIC) into FILE.
fn stamp(file: &str) -> ! {
    let start = mono_ns();
    let mut f = std::fs::File::create(file).expect("stamp file");
    let _ = write!(f, "{start} ");
    let end = mono_ns();
    let _ = write!(f, "{end}");
    drop(f);
    std::process::exit(0);
}

fn read_stamp(p: &Path) -> (u64, u64) {
    let s = std::fs::read_to_string(p).unwrap_or_default();
    let mut it = s.split_whitespace().map(|x| x.parse::<u64>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

fn latencies(dir: &Path, n: usize) -> Vec<f64> {
    let stamps: Vec<(u64, u64)> = (0..n)
        .map(|i| read_stamp(&dir.join(i.to_string())))
        .collect();
    stamps
        .windows(2)
        .map(|w| (w[1].0 as f64 - w[0].1 as f64) / 1e6)
        .collect()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

struct Vigil {
    child: std::process::Child,
    base: String,
    http: reqwest::blocking::Client,
}

impl Vigil {
    fn start_with(dir: &Path, cores: u32, env: &[(&str, &str)]) -> Vigil {
        let cfg = dir.join("vigil.toml");
        std::fs::write(
            &cfg,
            format!(
                "[vigil]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\nlog_level = \"warn\"\n\n\
                 [jobs]\ncpu_cores = {cores}\nram_gb = 64\nbuffer_pct = 0\nconsumption_factor_pct = 100\n\
                 check_measured = false\nhistory_max = 0\nmax_wait_s = 1000000\ncgroups = \"{}\"\n",
                dir.join("data").display(),
                // BENCH_CGROUPS=none: jobs without cgroups, to see what the cgroups cost.
                std::env::var("BENCH_CGROUPS").unwrap_or_else(|_| "auto".into()),
            ),
        )
        .expect("config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(["run", "-c"])
            .arg(&cfg)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start vigil");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("readiness line");
        let base = line
            .trim()
            .strip_prefix("vigil: listening on ")
            .expect("readiness line")
            .to_string();
        std::thread::spawn(move || for _ in out.lines() {});
        Vigil {
            child,
            base,
            http: reqwest::blocking::Client::new(),
        }
    }

    fn submit(&self, body: &Value) -> u64 {
        let r = self
            .http
            .post(format!("{}/api/jobs", self.base))
            .json(body)
            .send()
            .expect("submit");
        assert_eq!(r.status().as_u16(), 201);
        r.json::<Value>().expect("json")["id"].as_u64().expect("id")
    }

    fn cancel(&self, id: u64) {
        let r = self
            .http
            .post(format!("{}/api/jobs/{id}/cancel", self.base))
            .send()
            .expect("cancel");
        assert_eq!(r.status().as_u16(), 200);
    }

    fn queue(&self) -> Value {
        self.http
            .get(format!("{}/api/system/queue", self.base))
            .send()
            .and_then(|r| r.json())
            .expect("queue")
    }

    fn job_state(&self, id: u64) -> String {
        self.http
            .get(format!("{}/api/jobs/{id}", self.base))
            .send()
            .and_then(|r| r.json::<Value>())
            .map(|v| v["state"].as_str().unwrap_or("").to_string())
            .expect("job")
    }

    /// Until `last` (admitted last: one priority, FIFO) has ended and nothing is queued or
    /// running. Polls one job (an O(1) read of the actor), not the whole queue listing,
    /// which with 10 000 jobs queued is megabytes per poll and competes with the jobs.
    fn drain(&self, last: u64) {
        loop {
            let st = self.job_state(last);
            if !["queued", "running", "paused", ""].contains(&st.as_str()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        loop {
            let q = self.queue();
            if q["queued_count"] == 0 && q["running_count"] == 0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Vigil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn print_stats(name: &str, s: &Stats) {
    println!(
        "  {name:<34} median {:>8.3}  p95 {:>8.3}  p99 {:>8.3}  max {:>8.3}  (ms)",
        s.median, s.p95, s.p99, s.max
    );
}

fn bench_latency(exe: &Path, n: usize) {
    let floor = latency_floor(exe, n);
    let lat = latency_of(exe, n, &[]);
    print_stats("fork/exec floor (spawn, wait, spawn)", &floor);
    print_stats("vigil (exit → admission → spawn)", &lat);
    println!(
        "  vigil above the floor: median {:+.3} ms, p99 {:+.3} ms",
        lat.median - floor.median,
        lat.p99 - floor.p99
    );
    // BENCH_AB=1: the same with the other spawn modes (VIGIL_JOBS_SPAWN).
    if env_or("BENCH_AB", 0u32).expect("BENCH_AB") != 0 {
        for mode in ["fork", "clone3", "spare"] {
            let other = latency_of(exe, n, &[("VIGIL_JOBS_SPAWN", mode)]);
            print_stats(&format!("vigil, VIGIL_JOBS_SPAWN={mode}"), &other);
            println!(
                "  {mode} above the floor: median {:+.3} ms, p99 {:+.3} ms",
                other.median - floor.median,
                other.p99 - floor.p99
            );
        }
    }
}

fn latency_floor(exe: &Path, n: usize) -> Stats {
    println!("(a) exit → next queued job's first instruction, {n} jobs, one slot");
    // Floor: spawn, wait, spawn.
    let fdir = tempfile::tempdir().expect("tempdir");
    for i in 0..n {
        let st = Command::new(exe)
            .arg("--stamp")
            .arg(fdir.path().join(i.to_string()))
            .status()
            .expect("spawn stamp");
        assert!(st.success());
    }
    Stats::of(&latencies(fdir.path(), n))
}

fn latency_of(exe: &Path, n: usize, env: &[(&str, &str)]) -> Stats {
    let tmp = tempfile::tempdir().expect("tempdir");
    let v = Vigil::start_with(tmp.path(), 1, env);
    let sdir = tmp.path().join("stamps");
    std::fs::create_dir_all(&sdir).expect("stamps dir");
    let blocker = v.submit(&json!({"command": ["sleep", "600"], "cpu_cores": 1}));
    let mut last = blocker;
    for i in 0..n {
        last = v.submit(
            &json!({"command": [exe, "--stamp", sdir.join(i.to_string())], "cpu_cores": 1}),
        );
    }
    v.cancel(blocker);
    v.drain(last);
    Stats::of(&latencies(&sdir, n))
}

fn pueue_bin(root: &Path) -> (PathBuf, PathBuf) {
    let bin = root.join("bin");
    let (pueue, pueued) = (bin.join("pueue"), bin.join("pueued"));
    let ok = Command::new(&pueue)
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("4.0.4"));
    if !ok {
        println!("installing pueue 4.0.4 into {} …", root.display());
        let st = Command::new("cargo")
            .args([
                "install",
                "pueue",
                "--version",
                "4.0.4",
                "--locked",
                "--root",
            ])
            .arg(root)
            .status()
            .expect("cargo install pueue");
        assert!(st.success(), "cargo install pueue --version 4.0.4 failed");
    }
    (pueue, pueued)
}

struct Pueue {
    daemon: std::process::Child,
    pueue: PathBuf,
    cfg: PathBuf,
}

impl Pueue {
    fn start(root: &Path, dir: &Path) -> Pueue {
        let (pueue, pueued) = pueue_bin(root);
        let cfg = dir.join("pueue.yml");
        std::fs::write(
            &cfg,
            format!(
                "shared:\n  pueue_directory: {d}\n  runtime_directory: {d}\n  use_unix_socket: true\n  unix_socket_path: {d}/pueue.socket\n",
                d = dir.display()
            ),
        )
        .expect("pueue config");
        let daemon = Command::new(&pueued)
            .arg("-c")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pueued");
        let p = Pueue { daemon, pueue, cfg };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !p.run(&["status"]) {
            assert!(Instant::now() < deadline, "pueued did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        p
    }

    fn run(&self, args: &[&str]) -> bool {
        Command::new(&self.pueue)
            .arg("-c")
            .arg(&self.cfg)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Pueue {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

struct Run {
    submit_s: f64,
    drain_s: f64,
    rss_per_job: f64,
}

fn vigil_throughput(n: usize, par: u32, env: &[(&str, &str)]) -> Run {
    let tmp = tempfile::tempdir().expect("tempdir");
    let v = Vigil::start_with(tmp.path(), par, env);
    let blocker = v.submit(&json!({"command": ["sleep", "600"], "cpu_cores": par}));
    std::thread::sleep(Duration::from_millis(300));
    let before = rss_kib(v.child.id());
    let t = Instant::now();
    let mut last = blocker;
    for _ in 0..n {
        last = v.submit(&json!({"command": ["true"], "cpu_cores": 1}));
    }
    let submit_s = t.elapsed().as_secs_f64();
    let after = rss_kib(v.child.id());
    let t = Instant::now();
    v.cancel(blocker);
    v.drain(last);
    let drain_s = t.elapsed().as_secs_f64();
    Run {
        submit_s,
        drain_s,
        rss_per_job: (after.saturating_sub(before) * 1024) as f64 / n as f64,
    }
}

/// The floor: `par` threads of the bench itself running `true` back to back (spawn, wait).
fn floor_throughput(n: usize, par: u32) -> f64 {
    let t = Instant::now();
    let per = n.div_ceil(par as usize);
    let threads: Vec<_> = (0..par)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..per {
                    let st = Command::new("true").status().expect("spawn true");
                    assert!(st.success());
                }
            })
        })
        .collect();
    for th in threads {
        th.join().expect("floor thread");
    }
    t.elapsed().as_secs_f64() * n as f64 / (per * par as usize) as f64
}

fn pueue_throughput(root: &Path, n: usize, par: u32) -> Run {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = Pueue::start(root, tmp.path());
    assert!(p.run(&["parallel", &par.to_string()]));
    assert!(p.run(&["pause"]));
    let before = rss_kib(p.daemon.id());
    let t = Instant::now();
    for _ in 0..n {
        assert!(p.run(&["add", "--", "true"]));
    }
    let submit_s = t.elapsed().as_secs_f64();
    let after = rss_kib(p.daemon.id());
    let t = Instant::now();
    assert!(p.run(&["start"]));
    assert!(p.run(&["wait"]));
    let drain_s = t.elapsed().as_secs_f64();
    Run {
        submit_s,
        drain_s,
        rss_per_job: (after.saturating_sub(before) * 1024) as f64 / n as f64,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).is_some_and(|a| a == "--stamp") {
        stamp(args.get(2).map_or("/dev/null", String::as_str));
    }
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    let lat_n: usize = env_or("BENCH_LAT", 300).expect("BENCH_LAT");
    let n: usize = env_or("BENCH_JOBS", 10_000).expect("BENCH_JOBS");
    let par: u32 = env_or("BENCH_PARALLEL", 4).expect("BENCH_PARALLEL");
    let exe = std::env::current_exe().expect("bench binary");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-peers");
    println!(
        "machine: {} × {}, load {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model(),
        loadavg()
    );
    bench_latency(&exe, lat_n);
    println!(
        "\n(b) {n} trivial jobs, parallelism {par}; load {}",
        loadavg()
    );
    let floor = floor_throughput(n, par);
    println!(
        "  floor  : {par} threads of spawn+wait: {:>8.2} s  = {:>8.0} jobs/s",
        floor,
        n as f64 / floor
    );
    let v = vigil_throughput(n, par, &[]);
    println!(
        "  vigil  : submit {:>8.2} s  drain {:>8.2} s  = {:>8.0} jobs/s  ({:.2}× the floor's time)",
        v.submit_s,
        v.drain_s,
        n as f64 / v.drain_s,
        v.drain_s / floor
    );
    if env_or("BENCH_AB", 0u32).expect("BENCH_AB") != 0 {
        for mode in ["fork", "clone3", "spare"] {
            let f = vigil_throughput(n, par, &[("VIGIL_JOBS_SPAWN", mode)]);
            println!(
                "  vigil, VIGIL_JOBS_SPAWN={mode}: drain {:>8.2} s  = {:>8.0} jobs/s  ({:.2}× the floor's time)",
                f.drain_s,
                n as f64 / f.drain_s,
                f.drain_s / floor
            );
        }
    }
    // BENCH_PEER=0: vigil and the floor only (quick runs; pueue needs its install).
    let peer: u32 = env_or("BENCH_PEER", 1).expect("BENCH_PEER");
    if peer != 0 {
        let p = pueue_throughput(&root, n, par);
        println!(
            "  pueue  : submit {:>8.2} s  drain {:>8.2} s  = {:>8.0} jobs/s",
            p.submit_s,
            p.drain_s,
            n as f64 / p.drain_s
        );
        println!(
            "  ratio (vigil / pueue): drain throughput {:.1}×, submit {:.1}×, end to end {:.1}×",
            p.drain_s / v.drain_s,
            p.submit_s / v.submit_s,
            (p.submit_s + p.drain_s) / (v.submit_s + v.drain_s)
        );
        println!("\n(c) daemon memory per queued job (VmRSS delta / {n})");
        println!("  vigil  : {:>8.0} bytes", v.rss_per_job);
        println!("  pueue  : {:>8.0} bytes", p.rss_per_job);
    } else {
        println!("\n(c) daemon memory per queued job (VmRSS delta / {n})");
        println!("  vigil  : {:>8.0} bytes", v.rss_per_job);
    }
    println!("load after: {}", loadavg());
}
