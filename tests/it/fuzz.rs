//! Property-based fuzzing of every parser that input reaches: vigil.toml (main loader and
//! the monitor's tables), inbound event lines. None may panic; errors must be located.

use proptest::prelude::*;

const GOOD: &str = r#"[vigil]
listen = "127.0.0.1:0"
log_level = "info"

[program.bot]
command = "sleep 1000"
numprocs = 2
process_name = "bot_%(process_num)02d"
autorestart = "unexpected"
exitcodes = [0, 2]
stopsignal = "INT"
stdout_logfile_maxbytes = "1MB"

[group.g]
programs = ["bot"]

[rules.drawdown]
critical_pct = 10

[checks.feed]
kind = "freshness"
pairs = ["BTC/USD"]
threshold_s = 5

[halt]
position_behavior = "close"
"#;

fn mutate(base: &str, edits: &[(usize, u8)], cut: Option<usize>) -> String {
    let mut b = base.as_bytes().to_vec();
    for (pos, byte) in edits {
        if !b.is_empty() {
            let i = pos % b.len();
            b[i] = *byte;
        }
    }
    if let Some(c) = cut {
        b.truncate(c % (b.len() + 1));
    }
    String::from_utf8_lossy(&b).to_string()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    #[test]
    fn config_loaders_never_panic(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6), cut in proptest::option::of(any::<usize>())) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.toml");
        let text = mutate(GOOD, &edits, cut);
        if let Err(errs) = vigil::config::load_str(&path, &text) {
            for e in &errs.0 {
                // Every error names the file; located ones have a line within the text.
                prop_assert_eq!(&e.file, &path);
                prop_assert!(e.line <= text.lines().count() + 1, "{}", e);
            }
        }
        let _ = vigil::monitor::config::parse_text(&path, &text);
    }

    #[test]
    fn config_loaders_take_any_text(text in ".{0,400}") {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.toml");
        let _ = vigil::config::load_str(&path, &text);
        let _ = vigil::monitor::config::parse_text(&path, &text);
    }

    #[test]
    fn event_lines_never_panic(line in ".{0,200}", n in 1usize..1000) {
        match vigil_core::event::parse_line(n, &line) {
            Ok(_) => {}
            Err(e) => prop_assert_eq!(e.line, n),
        }
        let (ok, errs) = vigil_core::event::parse_body(&line);
        prop_assert!(ok.len() + errs.len() <= line.lines().count().max(1));
    }

    #[test]
    fn mutated_event_json_never_panics(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4)) {
        let base = r#"{"type":"fill","pair":"BTC/USD","side":"buy","qty":0.5,"price":65000,"realized_pnl":-3.5,"ts":"2026-11-23T10:00:00Z"}"#;
        let line = mutate(base, &edits, None);
        let _ = vigil_core::event::parse_line(1, &line);
    }
}
