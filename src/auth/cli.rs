//! `vigil hash-password`: the argon2 PHC string for `[[auth.users]] password_hash`, and with
//! `--new-token NAME` a fresh machine token and its `[[auth.tokens]]` entry.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, bail};

use super::{password, random_hex};

/// Run the command; exit 2 on bad input (empty password, mismatch, bad token name).
pub fn hash_password(new_token: Option<&str>) -> anyhow::Result<ExitCode> {
    if let Some(name) = new_token {
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            eprintln!(
                "vigil: a token name is 1 to 64 letters, digits, '_' or '-' (it is the part before the '.')"
            );
            return Ok(ExitCode::from(2));
        }
        let secret = random_hex(32);
        let hash = password::hash(&secret).map_err(anyhow::Error::msg)?;
        println!("# for vigil.toml (role: ingest, viewer, operator or admin):");
        println!("[[auth.tokens]]");
        println!("name = \"{name}\"");
        println!("role = \"ingest\"");
        println!("secret_hash = \"{hash}\"");
        println!();
        println!(
            "# the token for the client (VIGIL_TOKEN, or Authorization: Bearer …); it is not stored anywhere:"
        );
        println!("{name}.{secret}");
        return Ok(ExitCode::SUCCESS);
    }
    let pw = if std::io::stdin().is_terminal() {
        let a = prompt("Password: ")?;
        let b = prompt("Again: ")?;
        if a != b {
            eprintln!("vigil: the passwords differ");
            return Ok(ExitCode::from(2));
        }
        a
    } else {
        // One line from stdin (a script: `echo "$PW" | vigil hash-password`).
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if pw.is_empty() {
        eprintln!("vigil: empty password");
        return Ok(ExitCode::from(2));
    }
    let hash = password::hash(&pw).map_err(anyhow::Error::msg)?;
    println!("{hash}");
    Ok(ExitCode::SUCCESS)
}

/// Read a line from the terminal with echo off (restored even on error).
fn prompt(label: &str) -> anyhow::Result<String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    eprint!("{label}");
    let _ = std::io::stderr().flush();
    let saved = tcgetattr(&stdin).context("reading the terminal settings")?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    quiet.local_flags.insert(LocalFlags::ECHONL);
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet).context("turning off echo")?;
    struct Restore<'a>(&'a std::io::Stdin, nix::sys::termios::Termios);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            let _ = tcsetattr(self.0, SetArg::TCSANOW, &self.1);
        }
    }
    let _restore = Restore(&stdin, saved);
    let mut line = String::new();
    if stdin.lock().read_line(&mut line)? == 0 {
        bail!("no password given");
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}
