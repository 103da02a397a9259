//! `vigil sim session`: a deterministic trading-bot session in vigil's event schema with
//! injected faults, for `vigil analyze`'s golden tests and benchmark.
//!
//! One repetition lasts 570 s (9.5 min, like seed 002's session) from 2025-10-26T18:06:21Z;
//! repetitions follow each other every 600 s. Faults (all but the config snapshot are left
//! out with `--clean`):
//!
//! | fault | lines |
//! |---|---|
//! | a market-data loop `md_poll` overrunning its 1500 ms target | back-to-back `cycle`s of 3.31 s – 21.51 s |
//! | an order-flow exception with a Python stack | `log` error `AttributeError` at +114.911 s, after a canceled order |
//! | a None path error at two times | `log` error `Log cleanup error: … NoneType` at +12.5 s and +312 s |
//! | a heartbeat that never starts | source `engine`, expected by the snapshot's heartbeat check (300 s), never beats |
//! | a heartbeat stall | source `feed` beats every 5 s but not from +200 s to +245 s |
//! | canceled orders | 3 `order` events `canceled`, 1 `new` |
//! | a halt | `trading_state` ACTIVE → HALTED at +360 s, resumed at +450 s |
//!
//! With `--clean` the `engine` source beats every 10 s. Always present: `tick`s (`--ticks-per-s`), an `engine` cycle every second (20–150 ms of a
//! 200 ms target), the bot's own heartbeat-timeout warnings every 30 s from +314.4 s.

use std::io::Write;

/// 2025-10-26T18:06:21Z
pub const T0_MS: u64 = 1_761_501_981_000;
pub const SESSION_MS: u64 = 570_000;
pub const PERIOD_MS: u64 = 600_000;

#[derive(clap::Args, Clone, Debug)]
pub struct SessionArgs {
    /// Write here (default: standard output).
    #[arg(long, value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
    /// gzip the output.
    #[arg(long)]
    pub gzip: bool,
    /// Sessions one after another (every 600 s).
    #[arg(long, default_value_t = 1)]
    pub repeat: u64,
    /// Ticks per second.
    #[arg(long, default_value_t = 1)]
    pub ticks_per_s: u64,
    #[arg(long, default_value_t = 2)]
    pub seed: u64,
    /// Leave the faults out.
    #[arg(long)]
    pub clean: bool,
}

/// splitmix64: stable across versions, unlike a library RNG.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

const STACK: &str = r#"Traceback (most recent call last):\n  File \"/engine/engine.py\", line 1188, in _on_order_intent\n    self.order_router.handle_intent(intent_data)\n  File \"/services/order_router.py\", line 783, in handle_intent\n    self.tl.order_failed(...)\nAttributeError: 'JsonlWriter' object has no attribute 'order_failed'"#;

/// Lines of one repetition, as (ms offset, JSON without `ts`), in time order.
fn one(rep: u64, a: &SessionArgs, rng: &mut Rng) -> Vec<(u64, String)> {
    let mut v: Vec<(u64, String)> = Vec::with_capacity(4096);
    v.push((
        0,
        r#""type":"config","source":"bot","session_id":"session_20251026_180621","run_id":"d588d1dc","config":{"MD_POLL_MS":1500,"MD_BATCH_SIZE":13,"DROP_TRIGGER_VALUE":0.985,"POSITION_SIZE_USDT":25.0,"MAX_CONCURRENT_POSITIONS":10,"GLOBAL_TRADING":true,"checks":{"engine_heartbeat":{"kind":"heartbeat","sources":["engine"],"period_s":300}}}"#.into(),
    ));
    let mut price = 65_000.0 + (rep % 100) as f64;
    for s in 0..SESSION_MS / 1000 {
        for k in 0..a.ticks_per_s {
            let step = rng.range(0, 2001) as f64 / 1000.0 - 1.0;
            price = ((price + step) * 100.0).round() / 100.0;
            v.push((
                s * 1000 + k * 1000 / a.ticks_per_s.max(1),
                format!(r#""type":"tick","source":"feed","pair":"BTC/USD","price":{price}"#),
            ));
        }
        let d = rng.range(200, 1500) as f64 / 10.0;
        v.push((
            s * 1000 + 500,
            format!(
                r#""type":"cycle","source":"bot","name":"engine","duration_ms":{d},"target_ms":200"#
            ),
        ));
        let stalled = !a.clean && s > 200 && s < 245;
        if s % 5 == 0 && !stalled {
            v.push((s * 1000 + 1, r#""type":"heartbeat","source":"feed""#.into()));
        }
        if a.clean && s % 10 == 0 {
            v.push((
                s * 1000 + 2,
                r#""type":"heartbeat","source":"engine""#.into(),
            ));
        }
    }
    if !a.clean {
        let mut t = 0u64;
        let mut i = 0u64;
        while t < SESSION_MS - 3000 {
            let d10: u64 = match i {
                10 => 33_100,
                50 => 215_100,
                _ => match rng.next() % 100 {
                    0..18 => rng.range(33_200, 50_000),
                    18..82 => rng.range(50_000, 70_000),
                    82..97 => rng.range(70_000, 100_000),
                    _ => rng.range(100_000, 200_000),
                },
            };
            t += d10 / 10;
            if t > SESSION_MS {
                break;
            }
            let d = d10 as f64 / 10.0;
            v.push((
                t,
                format!(r#""type":"cycle","source":"bot","name":"md_poll","duration_ms":{d},"target_ms":1500"#),
            ));
            i += 1;
        }
        let log = |lvl: &str, kind: Option<&str>, src: &str, msg: &str| {
            let k = kind
                .map(|k| format!(r#","error_kind":"{k}""#))
                .unwrap_or_default();
            format!(r#""type":"log","source":"{src}","level":"{lvl}"{k},"message":"{msg}""#)
        };
        v.push((12_000, log("error", Some("TypeError"), "bot", "Could not ensure base log dir: argument should be a str or an os.PathLike object where __fspath__ returns a str, not 'NoneType'")));
        for at in [12_500, 312_000] {
            v.push((
                at,
                log(
                    "error",
                    Some("TypeError"),
                    "bot",
                    "Log cleanup error: expected str, bytes or os.PathLike object, not NoneType",
                ),
            ));
        }
        v.push((113_357, log("warning", None, "engine", "Debug tracer file handler setup failed: expected str, bytes or os.PathLike object, not NoneType")));
        v.push((114_900, format!(r#""type":"order","source":"order_router","order_id":"C02__61119338979843276{:04}","pair":"XRP/USDT","status":"canceled","reason":"canceled (filled 0.0/616.067)""#, rep % 10_000)));
        v.push((114_911, format!(r#""type":"log","source":"order_router","level":"error","message":"AttributeError: 'JsonlWriter' object has no attribute 'order_failed'","stack":"{STACK}""#)));
        v.push((299_000, r#""type":"order","source":"order_router","order_id":"o-299","pair":"BTC/USD","status":"new""#.into()));
        for at in [300_000, 400_000] {
            v.push((at, format!(r#""type":"order","source":"order_router","order_id":"o-{at}","pair":"BTC/USD","status":"canceled","reason":"timeout""#)));
        }
        for k in 0..9u64 {
            let gap = 314.4 + 30.0 * k as f64;
            v.push((
                314_400 + 30_000 * k,
                log("warning", None, "shutdown_coordinator", &format!("Heartbeat timeout: {gap:.1}s > 300.0s (warn-only mode) | no beat history available")),
            ));
        }
        v.push((360_000, r#""type":"trading_state","from":"ACTIVE","to":"HALTED","reason":"cycles md_poll: 100% of cycles over 1500 ms","source":"rule:md_poll","actor":"vigil""#.into()));
        v.push((450_000, r#""type":"trading_state","from":"HALTED","to":"ACTIVE","reason":"poll interval raised","source":"operator:admin","actor":"admin""#.into()));
    }
    v.push((
        SESSION_MS,
        r#""type":"position","source":"bot","pair":"BTC/USD","qty":0"#.into(),
    ));
    v.sort_by_key(|(t, _)| *t);
    v
}

pub fn run(a: &SessionArgs) -> anyhow::Result<()> {
    let sink: Box<dyn Write> = match &a.out {
        Some(p) => Box::new(std::fs::File::create(p)?),
        None => Box::new(std::io::stdout().lock()),
    };
    let sink: Box<dyn Write> = if a.gzip {
        Box::new(flate2::write::GzEncoder::new(
            sink,
            flate2::Compression::fast(),
        ))
    } else {
        sink
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 20, sink);
    let mut rng = Rng(a.seed);
    for rep in 0..a.repeat {
        let base = T0_MS + rep * PERIOD_MS;
        for (t, body) in one(rep, a, &mut rng) {
            writeln!(
                out,
                "{{\"ts\":\"{}\",{body}}}",
                vigil_core::report::rfc3339(base + t)
            )?;
        }
    }
    let inner = out.into_inner().map_err(|e| e.into_error())?;
    drop(inner);
    Ok(())
}
