use super::scan::Mapping;
use super::*;

fn run(text: &str, opts: &Options) -> Report {
    let m = Mapping::default();
    let mut acc = Acc::new(opts);
    acc.feed_chunk(
        text.as_bytes(),
        Origin {
            input: 0,
            default_source: "bot",
        },
        &m,
    );
    acc.finish(opts, &m, &["s.jsonl".into()])
}

const T0: u64 = 1_761_501_981_000; // 2025-10-26T18:06:21Z

fn session() -> String {
    let mut s = String::new();
    // 10 cycles of 1..=10 s against a 1.5 s target, one per 10 s.
    for i in 1..=10u64 {
        s += &format!(
            "{{\"type\":\"cycle\",\"name\":\"md_poll\",\"duration_ms\":{},\"target_ms\":1500,\"ts\":{}}}\n",
            i * 1000,
            T0 + i * 10_000
        );
    }
    // beats at 0, 5, 10, 40 s (a 30 s gap), ending at 100 s → tail of 60 s.
    for t in [0u64, 5, 10, 40] {
        s += &format!(
            "{{\"type\":\"heartbeat\",\"source\":\"feed\",\"ts\":{}}}\n",
            T0 + t * 1000
        );
    }
    s += &format!(
        "{{\"type\":\"log\",\"level\":\"error\",\"message\":\"Log cleanup error: expected str, not NoneType\",\"ts\":{}}}\n",
        T0 + 12_000
    );
    s += &format!(
        "{{\"type\":\"log\",\"level\":\"error\",\"message\":\"Log cleanup error: expected str, not NoneType\",\"ts\":{}}}\n",
        T0 + 72_000
    );
    s += &format!(
        "{{\"type\":\"order\",\"order_id\":\"o1\",\"status\":\"canceled\",\"ts\":{}}}\n",
        T0 + 50_000
    );
    s += &format!(
        "{{\"type\":\"trading_state\",\"from\":\"ACTIVE\",\"to\":\"HALTED\",\"reason\":\"stale feed\",\"ts\":{}}}\n",
        T0 + 60_000
    );
    s += &format!(
        "{{\"type\":\"trading_state\",\"from\":\"HALTED\",\"to\":\"ACTIVE\",\"reason\":\"ok\",\"ts\":{}}}\n",
        T0 + 90_000
    );
    s += "not json\n\n";
    s += &format!(
        "{{\"type\":\"cycle\",\"duration_ms\":\"slow\",\"ts\":{}}}\n",
        T0 + 1
    );
    s += &format!(
        "{{\"type\":\"metric\",\"name\":\"x\",\"value\":1,\"ts\":{}}}\n",
        T0 + 100_000
    );
    s
}

#[test]
fn a_small_session_has_the_exact_numbers() {
    let r = run(&session(), &Options::default());
    assert_eq!(r.session.start.as_deref(), Some("2025-10-26T18:06:21.000Z"));
    assert_eq!(r.session.duration_s, 100.0);
    assert_eq!(r.session.bad_lines, 2);
    assert_eq!(r.session.blank_lines, 1);
    assert_eq!(r.session.lines, 23);
    assert_eq!(r.session.bad_line_examples[0].line, 20);
    assert_eq!(r.session.bad_line_examples[1].line, 22);
    assert!(
        r.session.bad_line_examples[0]
            .reason
            .starts_with("not JSON")
    );
    assert_eq!(
        r.session.bad_line_examples[1].reason,
        "duration_ms: expected a number, got a string"
    );
    let c = &r.cycles[0];
    assert_eq!((c.count, c.overruns), (10, 9));
    assert_eq!(c.p50_ms, Some(5000.0));
    assert_eq!(c.p95_ms, Some(10_000.0));
    assert_eq!(c.p99_ms, Some(10_000.0));
    assert_eq!(c.mean_ms, Some(5500.0));
    assert_eq!(c.overruns_per_min, 5.4);
    let b: Vec<u64> = c.buckets.iter().map(|b| b.count).collect();
    // edges 10 50 100 250 500 1000 2500 5000 7000 10000 30000 60000 +inf
    assert_eq!(b, vec![0, 0, 0, 0, 0, 1, 1, 3, 2, 3, 0, 0, 0]);
    let h = &r.heartbeats[0];
    assert_eq!(
        (h.beats, h.timeout_from.as_str(), h.timeout_s),
        (4, "median", 15.0)
    );
    // 30 s gap and the 60 s tail exceed 15 s.
    assert_eq!(h.timeouts, 2);
    assert_eq!(h.max_gap_s, 60.0);
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors[0].count, 2);
    assert_eq!(r.trading.orders_by_status.get("canceled"), Some(&1));
    assert_eq!(r.trading.halts.len(), 1);
    assert_eq!(r.trading.halts[0].duration_s, 30.0);
    assert_eq!(r.findings[0].severity, findings::Severity::Critical);
    assert!(
        r.findings[0].recommendation.contains("10000 ms (the p95)"),
        "{:?}",
        r.findings[0]
    );
}

#[test]
fn chunked_and_merged_equals_one_pass() {
    let text = session();
    let opts = Options {
        expect_heartbeat: vec!["engine".into()],
        ..Options::default()
    };
    let whole = run(&text, &opts);
    let m = Mapping::default();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    for cut in 1..lines.len() {
        let o = Origin {
            input: 0,
            default_source: "bot",
        };
        let mut a = Acc::new(&opts);
        a.feed_chunk(lines[..cut].concat().as_bytes(), o, &m);
        let mut b = Acc::new(&opts);
        b.feed_chunk(lines[cut..].concat().as_bytes(), o, &m);
        a.merge_after(b, true);
        let r = a.finish(&opts, &m, &["s.jsonl".into()]);
        assert_eq!(r, whole, "cut at {cut}");
    }
    let e = whole.heartbeats.iter().find(|h| h.source == "engine");
    assert!(e.is_some_and(|h| h.never_beat && h.timeouts == 1 && h.expected));
}
