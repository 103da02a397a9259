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
        .replace("@LISTEN@", listen)
        .replace(
            "@DATA@",
            &data
                .to_string_lossy()
                .replace('\\', "\\\\")
                .replace('"', "\\\""),
        );
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let cfg = config::load_str(&cwd.join("demo.toml"), &text)
        .map_err(|e| anyhow::anyhow!("the embedded demo config is invalid:\n{e}"))?;
    let banner = format!(
        "vigil demo: open http://{} — simulated feed and bot under supervision; \
         try `vigil ctl status`, `vigil events --follow`; Ctrl-C stops everything",
        cfg.vigil.listen
    );
    Ok((cfg, banner))
}
