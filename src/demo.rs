//! `vigil demo`: an embedded config supervising the built-in simulator.

use std::path::Path;

use anyhow::Context;

use crate::config::{self, Config};

/// The demo config; `@EXE@`, `@LISTEN@` and `@DATA@` are filled in at start.
pub const DEMO_TOML: &str = r#"
[vigil]
listen = "@LISTEN@"
data_dir = "@DATA@"
log_level = "info"

[program.feed]
command = "@EXE@ sim feed --interval-ms 250"
priority = 10
startsecs = 1
events = "stdout"

[program.bot]
command = "@EXE@ sim bot --crash-every-s 45"
priority = 20
startsecs = 2
startretries = 5
autorestart = true
events = "stdout"
critical = true
stdout_logfile_maxbytes = "1MB"
stdout_logfile_backups = 3

# Health checks: the feed must tick, the bot must beat and keep its loop on time.
[checks.market_data]
kind = "freshness"
pairs = ["BTC/USD", "ETH/USD", "SOL/USD"]
threshold_s = 5
grace_s = 15

[checks.bot_heartbeat]
kind = "heartbeat"
sources = ["bot"]
period_s = 2
grace_s = 3

[checks.bot_loop]
kind = "cycles"
name = "main"
target_ms = 100
window_s = 60
warn_overrun_pct = 20
critical_overrun_pct = 60
action = "warn"

[checks.host_ram]
kind = "host"
metric = "ram"
warn_pct = 90
critical_pct = 97
sustain_s = 60
action = "warn"

# Background jobs (issue 10): a research program submits a sample backtest through the CLI;
# the job reports its progress (VIGIL_PROGRESS lines) to the Status Center and the API.
# Dev mode: laptop-friendly admission (5 % buffer, 50 % consumption factor).
[jobs]
dev_mode = true

[jobs.types.backtest]
command = ["@EXEPATH@", "sim", "backtest", "--symbol", "{symbol}", "--days", "{days}"]
# The demo bot's loop overruns on purpose (its check warns), which would keep a pausable job
# frozen for the whole demo.
pausable = false
timeout_s = 600

[jobs.types.backtest.params.symbol]
enum = ["BTC/USD", "ETH/USD", "SOL/USD"]

[jobs.types.backtest.params.days]
pattern = "[1-9][0-9]{0,2}"
default = "30"

[program.research]
command = "@EXE@ job submit --type backtest --param symbol=BTC/USD --description 'sample backtest' --wait"
priority = 30
startsecs = 0
autorestart = false
environment = { VIGIL_TOKEN = "demo.@TOKSECRET@" }

# Risk rules on what the bot reports.
[rules.drawdown]
warn_pct = 2
critical_pct = 5

[rules.losing_streak]
kind = "consecutive_losses"
warn = 4
critical = 8
action = "reduce"
auto_resume_after_s = 120

[halt]
position_behavior = "close"

# A login for the demo, made up at each start (printed with the URL).
[auth]
jwt_secret = "@JWT@"

[[auth.users]]
name = "admin"
role = "admin"
password_hash = "@PWHASH@"

[[auth.tokens]]
name = "demo"
role = "admin"
secret_hash = "@TOKHASH@"
"#;

pub fn config(listen: &str, data_dir: &Path) -> anyhow::Result<(Config, String)> {
    let exe = std::env::current_exe().context("locating the vigil binary")?;
    let exe = exe.to_string_lossy().to_string();
    let quoted = shlex::try_quote(&exe)
        .context("quoting the binary path")?
        .to_string();
    let data = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let text = DEMO_TOML
        .replace("@EXE@", &quoted.replace('\\', "\\\\").replace('"', "\\\""))
        .replace("@EXEPATH@", &exe.replace('\\', "\\\\").replace('"', "\\\""))
        .replace("@LISTEN@", listen)
        .replace(
            "@DATA@",
            &data
                .to_string_lossy()
                .replace('\\', "\\\\")
                .replace('"', "\\\""),
        );
    let hex = |n: usize| -> String {
        use rand::Rng;
        let mut rng = rand::rng();
        (0..n)
            .map(|_| format!("{:02x}", rng.random::<u8>()))
            .collect()
    };
    let password = hex(8);
    let token_secret = hex(32);
    let pw_hash = crate::auth::password::hash(&password).map_err(|e| anyhow::anyhow!(e))?;
    let tok_hash = crate::auth::password::hash(&token_secret).map_err(|e| anyhow::anyhow!(e))?;
    let text = text
        .replace("@JWT@", &hex(32))
        .replace("@PWHASH@", &pw_hash)
        .replace("@TOKHASH@", &tok_hash)
        .replace("@TOKSECRET@", &token_secret);
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let path = cwd.join("demo.toml");
    let cfg = config::load_str(&path, &text)
        .map_err(|e| anyhow::anyhow!("the embedded demo config is invalid:\n{e}"))?;
    let banner = format!(
        "{}\nvigil demo: log in as admin / {password}, or for the CLI: export VIGIL_URL=http://{} VIGIL_TOKEN=demo.{token_secret}",
        banner_text(&cfg),
        cfg.vigil.listen
    );
    Ok((cfg, banner))
}

fn banner_text(cfg: &Config) -> String {
    format!(
        "vigil demo: Status Center at http://{0}/ (open it in a browser); API at http://{0} (try /health, /api/state, /api/checks) — simulated feed and bot under supervision; \
         try `vigil ctl status`, `vigil state`, `vigil events --follow`, `vigil job ls`, `vigil halt --reason test`; \
         Ctrl-C stops everything",
        cfg.vigil.listen
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_demo_config_is_valid() {
        let dir = tempfile::tempdir().unwrap();
        let (cfg, banner) = super::config("127.0.0.1:0", dir.path()).unwrap();
        assert_eq!(cfg.programs.len(), 3);
        let bt = cfg.jobs.job_type("backtest").unwrap();
        assert!(
            bt.command
                .as_ref()
                .is_some_and(|c| c[1] == "sim" && c[2] == "backtest")
        );
        assert!(cfg.program("bot").unwrap().critical);
        assert_eq!(cfg.monitor.rules.len(), 6);
        assert!(banner.contains("vigil demo"));
    }
}
