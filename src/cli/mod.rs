//! The command line: clap derive; client verbs talk to the daemon's REST API.

pub mod analyze;
pub mod ctl;
pub mod job;
pub mod venue;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "vigil",
    version,
    about = "Keeps automated trading systems alive and safe"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(clap::Args, Clone)]
pub struct ClientArgs {
    /// The daemon's URL.
    #[arg(
        long,
        env = "VIGIL_URL",
        default_value = "http://127.0.0.1:7070",
        global = true
    )]
    pub url: String,
    /// Bearer token.
    #[arg(long, env = "VIGIL_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Run the daemon in the foreground.
    Run {
        /// Config file (`vigil.toml`; `.conf`/`.ini` is read as supervisord's format).
        #[arg(short, long, default_value = "vigil.toml")]
        config: PathBuf,
        /// Listen here instead of the file's `[vigil] listen` (`vigil_listen`); port 0 picks a
        /// free port (the readiness line tells which).
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// supervisord's `-i`: the identifier reported by `supervisor.getIdentification` and in
        /// listener headers, instead of the file's `identifier`.
        #[arg(short, long)]
        identifier: Option<String>,
        /// When `vigil.db` fails its integrity check at start: set it aside
        /// (`vigil.db.damaged-TIME`), start on a new one, HALTED, instead of refusing to start.
        #[arg(long)]
        recover: bool,
    },
    /// Run the daemon on an embedded demo config with a simulated trading bot.
    Demo {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7070")]
        listen: String,
        /// Where the demo keeps its state.
        #[arg(long, default_value = "vigil-data/demo")]
        data_dir: PathBuf,
    },
    /// Validate a config file; exit 2 on any error.
    CheckConfig {
        file: PathBuf,
        /// Warnings (options and sections a supervisord config has that vigil ignores, as
        /// supervisord does) are errors too.
        #[arg(long)]
        strict: bool,
    },
    /// Print the vigil.toml equivalent to a supervisord config (`supervisord.conf`); exit 2 on
    /// any error in it.
    Convert { file: PathBuf },
    /// Event history and live stream.
    Events {
        #[arg(long)]
        since: Option<u64>,
        #[arg(long = "type")]
        kind: Option<String>,
        #[arg(short, long)]
        follow: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show the trading state (exit 0 ACTIVE, 3 REDUCING, 4 HALTED).
    State {
        #[command(flatten)]
        client: ClientArgs,
        /// Print the JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Halt trading (or only allow reducing positions).
    Halt {
        #[arg(long)]
        reason: String,
        #[arg(long)]
        reduce_only: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Resume trading; refused while a triggering condition still holds unless --force.
    Resume {
        #[arg(long)]
        reason: String,
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Read NDJSON events on stdin and deliver them to the daemon.
    Send {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print an argon2 hash for `[[auth.users]] password_hash` (the password is read from
    /// stdin, or prompted for without echo on a terminal).
    HashPassword {
        /// Instead, make a machine token `NAME.SECRET` and print its `[[auth.tokens]]` entry.
        #[arg(long, value_name = "NAME")]
        new_token: Option<String>,
    },
    /// Control a running daemon (supervisorctl-like).
    Ctl {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        action: ctl::Action,
    },
    /// Simulated trading processes for the demo.
    #[command(subcommand)]
    Sim(crate::sim::SimCmd),
    /// The exchange dead-man switch of each venue (`[venue.ID]`).
    Venue {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        cmd: venue::VenueCmd,
    },
    /// The session report (post-mortem) from JSONL logs, the store or a running daemon.
    Analyze(Box<analyze::Args>),
    /// Background jobs: submit, ls, show, logs, cancel.
    Job {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        action: job::JobCmd,
    },
}

/// Exit codes scripts can rely on (documented in docs/cli.md).
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const NOT_RUNNING: u8 = 3;
    pub const NO_SUCH_PROCESS: u8 = 4;
    pub const UNREACHABLE: u8 = 5;
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Cmd::Run {
            config,
            listen,
            identifier,
            recover,
        } => {
            let overrides = crate::config::Overrides { listen, identifier };
            let cfg = match crate::config::load(&config) {
                Ok(c) => overrides.apply(c),
                Err(errs) => {
                    eprintln!("{errs}");
                    return Ok(ExitCode::from(exit::USAGE));
                }
            };
            init_tracing(&cfg.vigil.log_level);
            // What supervisord ignores (unknown options and sections) is ignored, and said.
            for w in &cfg.warnings {
                tracing::warn!("{w}");
            }
            let abs = std::path::absolute(&config).unwrap_or(config);
            runtime()?.block_on(serve(crate::daemon::RunOptions {
                config: cfg,
                reload_from: Some(abs),
                overrides,
                banner: None,
                recover,
            }))?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Demo { listen, data_dir } => {
            let (cfg, banner) = crate::demo::config(&listen, &data_dir)?;
            init_tracing(&cfg.vigil.log_level);
            runtime()?.block_on(serve(crate::daemon::RunOptions {
                config: cfg,
                reload_from: None,
                overrides: Default::default(),
                banner: Some(banner),
                recover: false,
            }))?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Convert { file } => match crate::config::supervisord::convert(&file) {
            Ok(converted) => {
                print!("{}", converted.toml);
                // What the input has that supervisord ignores, located in it.
                for w in &converted.ignored {
                    eprintln!("{w}");
                }
                // What the translation could not carry over exactly.
                for w in &converted.warnings {
                    eprintln!("{}: warning: {w}", file.display());
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(errs) => {
                eprintln!("{errs}");
                eprintln!("{}: {} error(s)", file.display(), errs.0.len());
                Ok(ExitCode::from(exit::USAGE))
            }
        },
        Cmd::CheckConfig { file, strict } => match crate::config::load(&file) {
            Ok(cfg) if strict && !cfg.warnings.is_empty() => {
                eprintln!("{}", crate::config::ConfigErrors(cfg.warnings.clone()));
                eprintln!(
                    "{}: {} error(s) (--strict: warnings are errors)",
                    file.display(),
                    cfg.warnings.len()
                );
                Ok(ExitCode::from(exit::USAGE))
            }
            Ok(cfg) => {
                for w in &cfg.warnings {
                    eprintln!("{w}");
                }
                let n: usize = cfg.programs.iter().map(|p| p.processes.len()).sum();
                println!(
                    "{}: ok ({} programs, {} processes, {} groups, {} checks and rules)",
                    file.display(),
                    cfg.programs.len(),
                    n,
                    cfg.groups.len(),
                    cfg.monitor.rules.len()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(errs) => {
                eprintln!("{errs}");
                eprintln!("{}: {} error(s)", file.display(), errs.0.len());
                Ok(ExitCode::from(exit::USAGE))
            }
        },
        Cmd::Events {
            since,
            kind,
            follow,
            client,
        } => client_runtime()?.block_on(ctl::events(&client, since, kind, follow)),
        Cmd::Ctl { client, action } => client_runtime()?.block_on(ctl::run(&client, action)),
        Cmd::HashPassword { new_token } => crate::auth::cli::hash_password(new_token.as_deref()),
        Cmd::State { client, json } => client_runtime()?.block_on(ctl::state(&client, json)),
        Cmd::Halt {
            reason,
            reduce_only,
            client,
        } => client_runtime()?.block_on(ctl::halt(&client, &reason, reduce_only)),
        Cmd::Resume {
            reason,
            force,
            client,
        } => client_runtime()?.block_on(ctl::resume(&client, &reason, force)),
        Cmd::Send { client } => client_runtime()?.block_on(ctl::send(&client)),
        Cmd::Sim(cmd) => client_runtime()?.block_on(crate::sim::run(cmd)),
        Cmd::Venue { client, cmd } => client_runtime()?.block_on(venue::run(&client, cmd)),
        Cmd::Analyze(args) => analyze::run(*args),
        Cmd::Job { client, action } => client_runtime()?.block_on(job::run(&client, action)),
    }
}

/// Bind what the config listens on and run the daemon until a signal or XML-RPC `shutdown`.
async fn serve(opts: crate::daemon::RunOptions) -> anyhow::Result<()> {
    let bound = crate::daemon::bind(&opts.config).await?;
    let stop = tokio_util::sync::CancellationToken::new();
    crate::daemon::run(opts, bound, stop, tokio_util::task::TaskTracker::new()).await
}

/// The daemon runs on a current-thread runtime: its only worker is the main thread, which
/// lives as long as vigil, so the children's parent-death signal fires only when vigil dies.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn client_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    runtime()
}

fn init_tracing(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VIGIL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        // stderr, and a copy for supervisord's `readLog` / `maintail` (compat::mainlog).
        .with_writer(crate::compat::mainlog::Tee)
        .try_init();
}
