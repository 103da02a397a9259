//! `vigil sim feed|bot`: simulated trading processes for the demo. They write PRODUCT.md
//! events as NDJSON on stdout (the demo config sets `events = "stdout"`), and the bot
//! crashes now and then so that restarts show.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;

pub mod session;
use rand::Rng;
use serde_json::json;

#[derive(Subcommand, Clone)]
pub enum SimCmd {
    /// A market-data feed: ticks for a few pairs.
    Feed {
        #[arg(long, default_value = "BTC/USD,ETH/USD,SOL/USD", value_delimiter = ',')]
        pairs: Vec<String>,
        #[arg(long, default_value_t = 250)]
        interval_ms: u64,
    },
    /// A sample backtest job: reports its progress with `VIGIL_PROGRESS` lines on stdout, one
    /// simulated day at a time, then prints the result.
    Backtest {
        #[arg(long, default_value = "BTC/USD")]
        symbol: String,
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// Milliseconds per simulated day.
        #[arg(long, default_value_t = 500)]
        day_ms: u64,
    },
    /// A trading bot: heartbeats, cycles, fills, positions and equity; crashes now and then.
    Bot {
        /// Mean seconds between crashes (0 = never).
        #[arg(long, default_value_t = 60.0)]
        crash_every_s: f64,
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
    },
    /// A recorded session with injected faults, as JSONL (for `vigil analyze`).
    Session(session::SessionArgs),
}

/// A job's progress line (consumed by vigil, not logged as output).
fn progress(v: serde_json::Value) -> bool {
    let mut out = std::io::stdout().lock();
    writeln!(out, "VIGIL_PROGRESS {v}")
        .and_then(|_| out.flush())
        .is_ok()
}

fn emit(v: serde_json::Value) -> bool {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{v}").and_then(|_| out.flush()).is_ok()
}

pub async fn run(cmd: SimCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        SimCmd::Session(a) => {
            session::run(&a)?;
            Ok(ExitCode::SUCCESS)
        }
        SimCmd::Feed { pairs, interval_ms } => {
            let mut prices: Vec<f64> = pairs
                .iter()
                .enumerate()
                .map(|(i, _)| [65_000.0, 3_400.0, 150.0].get(i).copied().unwrap_or(100.0))
                .collect();
            let mut tick = tokio::time::interval(Duration::from_millis(interval_ms.max(10)));
            loop {
                tick.tick().await;
                for (pair, price) in pairs.iter().zip(prices.iter_mut()) {
                    let step: f64 = rand::rng().random_range(-0.0015..0.0015);
                    *price *= 1.0 + step;
                    let spread = *price * 0.0001;
                    if !emit(json!({"type": "tick", "pair": pair, "price": round(*price),
                        "bid": round(*price - spread), "ask": round(*price + spread)}))
                    {
                        return Ok(ExitCode::SUCCESS);
                    }
                }
            }
        }
        SimCmd::Backtest {
            symbol,
            days,
            day_ms,
        } => {
            let mut equity = 10_000.0f64;
            let mut tick = tokio::time::interval(Duration::from_millis(day_ms.max(1)));
            println!("backtest {symbol}: {days} days from equity {equity}");
            for day in 1..=days {
                tick.tick().await;
                equity *= 1.0 + rand::rng().random_range(-0.01..0.012);
                let pct = (f64::from(day) * 100.0 / f64::from(days.max(1))).round();
                let desc = format!("Backtesting {symbol}: day {day} of {days}, equity {equity:.2}");
                if !progress(json!({"description": desc, "percent": pct})) {
                    return Ok(ExitCode::SUCCESS);
                }
            }
            let ret = equity / 10_000.0 - 1.0;
            progress(
                json!({"description": format!("Backtest complete! Return: {:+.2}%", ret * 100.0), "percent": 100}),
            );
            println!("result: {symbol} return {:+.4}", ret);
            Ok(ExitCode::SUCCESS)
        }
        SimCmd::Bot {
            crash_every_s,
            interval_ms,
        } => {
            let mut equity = 10_000.0f64;
            let mut position = 0.0f64;
            let mut tick = tokio::time::interval(Duration::from_millis(interval_ms.max(10)));
            let p_crash = if crash_every_s > 0.0 {
                (interval_ms as f64 / 1000.0) / crash_every_s
            } else {
                0.0
            };
            let mut n: u64 = 0;
            eprintln!("bot: starting with equity {equity}");
            loop {
                tick.tick().await;
                n += 1;
                let dur: f64 = rand::rng().random_range(20.0..140.0);
                emit(json!({"type": "heartbeat"}));
                emit(
                    json!({"type": "cycle", "name": "main", "duration_ms": round(dur), "target_ms": 100}),
                );
                if n.is_multiple_of(3) {
                    let side = if rand::rng().random_bool(0.5) {
                        "buy"
                    } else {
                        "sell"
                    };
                    let qty = 0.01;
                    let pnl: f64 = rand::rng().random_range(-12.0..14.0);
                    position += if side == "buy" { qty } else { -qty };
                    equity += pnl;
                    emit(
                        json!({"type": "fill", "pair": "BTC/USD", "side": side, "qty": qty,
                        "price": 65_000.0, "realized_pnl": round(pnl), "order_id": format!("o{n}")}),
                    );
                    emit(json!({"type": "position", "pair": "BTC/USD", "qty": round(position)}));
                    emit(json!({"type": "equity", "equity": round(equity)}));
                }
                if p_crash > 0.0 && rand::rng().random_bool(p_crash.min(1.0)) {
                    eprintln!("Traceback (most recent call last):");
                    eprintln!("  File \"bot.py\", line 212, in run_cycle");
                    eprintln!("ConnectionError: exchange websocket closed unexpectedly");
                    return Ok(ExitCode::from(1));
                }
            }
        }
    }
}

fn round(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}
