use super::*;
use crate::program::Exit;
use crate::rules::{CheckStatus, Status};
use crate::trading::{TradingState, Values};
use proptest::prelude::*;

// ---------------------------------------------------------------- helpers

fn pt(from: ProcessState, to: ProcessState, tries: u32, pid: u32) -> ProcessTransition {
    ProcessTransition {
        from,
        to,
        tries,
        pid,
        expected: None,
        exit: None,
        reason: None,
    }
}

/// `childutils.get_headers`: `dict([x.split(':') for x in line.split()])`, which fails
/// unless every token holds exactly one `:`.
fn childutils_headers(line: &str) -> Option<Vec<(String, String)>> {
    line.split_whitespace()
        .map(|tok| {
            let parts: Vec<&str> = tok.split(':').collect();
            (parts.len() == 2).then(|| (parts[0].to_owned(), parts[1].to_owned()))
        })
        .collect()
}

fn cfg(name: &str, events: &str, buffer_size: usize, numprocs: usize) -> PoolConfig {
    PoolConfig {
        name: name.into(),
        server: "supervisor".into(),
        buffer_size,
        numprocs,
        events: Subscriptions::parse(events).unwrap(),
        retry_delay_ms: 0,
    }
}

fn remote(i: u64) -> Notification {
    remote_communication("t", &format!("event {i}"))
}

fn ev(seq: u64, serial: u64) -> PoolEvent {
    PoolEvent {
        seq: Some(seq),
        serial,
        notification: remote(seq),
    }
}

/// Spawn listener `i`, report RUNNING, and have it say READY.
fn start(pool: &mut Pool, i: usize) -> Vec<Effect> {
    let mut fx = pool.on(Input::Spawned { process: i }, 0);
    fx.extend(pool.on(
        Input::ProcessState {
            process: i,
            state: ProcessState::Running,
        },
        0,
    ));
    fx.extend(pool.on(
        Input::Output {
            process: i,
            bytes: b"READY\n",
        },
        0,
    ));
    fx
}

fn output(pool: &mut Pool, i: usize, bytes: &[u8]) -> Vec<Effect> {
    pool.on(Input::Output { process: i, bytes }, 0)
}

/// `(process, serial, poolserial)` of every Send.
fn sends(fx: &[Effect]) -> Vec<(usize, u64, u64)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Send {
                process,
                serial,
                poolserial,
                ..
            } => Some((*process, *serial, *poolserial)),
            _ => None,
        })
        .collect()
}

fn sent_text(fx: &[Effect]) -> Vec<String> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Send { bytes, .. } => Some(String::from_utf8(bytes.clone()).unwrap()),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------- event types

#[test]
fn event_type_names_round_trip_and_parse_case_insensitively() {
    assert_eq!(EventType::ALL.len(), 22);
    for t in EventType::ALL {
        assert_eq!(EventType::parse(t.name()), Some(t));
        assert_eq!(EventType::parse(&t.name().to_lowercase()), Some(t));
        assert_eq!(
            Subscription::parse(&format!("  {}  ", t.name().to_lowercase())),
            Ok(Subscription::Concrete(t))
        );
        assert!(!t.name().contains(':') && !t.name().contains(' '));
    }
    for a in AbstractType::ALL {
        assert_eq!(EventType::parse(a.name()), None, "abstract is not concrete");
        assert_eq!(
            Subscription::parse(&a.name().to_lowercase()),
            Ok(Subscription::Abstract(a))
        );
    }
    assert_eq!(
        Subscription::parse("EVENT_BUFFER_OVERFLOW"),
        Err(UnknownEventType::BufferOverflowRemoved)
    );
    assert_eq!(
        Subscription::parse("PROCESS_STATE_RUNNINGX"),
        Err(UnknownEventType::Unknown("PROCESS_STATE_RUNNINGX".into()))
    );
    assert_eq!(
        Subscriptions::parse("PROCESS_STATE,"),
        Err(UnknownEventType::Empty)
    );
    let s = Subscriptions::parse("PROCESS_STATE_EXITED, tick").unwrap();
    assert!(s.matches(EventType::ProcessStateExited));
    assert!(!s.matches(EventType::ProcessStateFatal));
    assert!(s.matches(EventType::Tick3600));
    assert!(!s.matches(EventType::RemoteCommunication));
}

#[test]
fn hierarchy_is_supervisords_plus_vigil() {
    use AbstractType as A;
    // (abstract, the concrete types it delivers)
    let table: &[(A, &[&str])] = &[
        (
            A::ProcessState,
            &[
                "PROCESS_STATE_STOPPED",
                "PROCESS_STATE_STARTING",
                "PROCESS_STATE_RUNNING",
                "PROCESS_STATE_BACKOFF",
                "PROCESS_STATE_STOPPING",
                "PROCESS_STATE_EXITED",
                "PROCESS_STATE_FATAL",
                "PROCESS_STATE_UNKNOWN",
            ],
        ),
        (A::ProcessLog, &["PROCESS_LOG_STDOUT", "PROCESS_LOG_STDERR"]),
        (
            A::ProcessCommunication,
            &[
                "PROCESS_COMMUNICATION_STDOUT",
                "PROCESS_COMMUNICATION_STDERR",
            ],
        ),
        (
            A::SupervisorStateChange,
            &[
                "SUPERVISOR_STATE_CHANGE_RUNNING",
                "SUPERVISOR_STATE_CHANGE_STOPPING",
            ],
        ),
        (A::Tick, &["TICK_5", "TICK_60", "TICK_3600"]),
        (
            A::ProcessGroup,
            &["PROCESS_GROUP_ADDED", "PROCESS_GROUP_REMOVED"],
        ),
        (A::Vigil, &["VIGIL_TRADING_STATE", "VIGIL_CHECK"]),
    ];
    for (a, names) in table {
        let got: Vec<&str> = EventType::ALL
            .into_iter()
            .filter(|t| t.is_subtype_of(*a))
            .map(EventType::name)
            .collect();
        assert_eq!(&got, names, "{a}");
    }
    assert!(EventType::ALL.iter().all(|t| t.is_subtype_of(A::Event)));
    // REMOTE_COMMUNICATION hangs directly under EVENT.
    let only_event: Vec<EventType> = EventType::ALL
        .into_iter()
        .filter(|t| t.parent() == A::Event)
        .collect();
    assert_eq!(only_event, vec![EventType::RemoteCommunication]);
    for s in ProcessState::ALL {
        let t = EventType::process_state(s);
        assert_eq!(t.name(), format!("PROCESS_STATE_{}", s.name()));
    }
}

// ---------------------------------------------------------------- payloads (golden)

#[test]
fn payloads_match_supervisord_byte_for_byte() {
    use ProcessState::*;
    let exited = ProcessTransition {
        expected: Some(false),
        exit: Some(Exit::Code(1)),
        ..pt(Running, Exited, 0, 4285)
    };
    // (built, eventname, payload) — payloads copied from SUPERVISORD.md §3.4.
    let cases: Vec<(Notification, &str, &str)> = vec![
        (
            process_state("raw", "raw", &pt(Stopped, Starting, 0, 0)),
            "PROCESS_STATE_STARTING",
            "processname:raw groupname:raw from_state:STOPPED tries:0",
        ),
        (
            process_state("quick", "quick", &pt(Starting, Backoff, 1, 0)),
            "PROCESS_STATE_BACKOFF",
            "processname:quick groupname:quick from_state:STARTING tries:1",
        ),
        (
            process_state("sleeper", "sleeper", &pt(Starting, Running, 0, 4285)),
            "PROCESS_STATE_RUNNING",
            "processname:sleeper groupname:sleeper from_state:STARTING pid:4285",
        ),
        (
            process_state("sleeper", "sleeper", &exited),
            "PROCESS_STATE_EXITED",
            "processname:sleeper groupname:sleeper from_state:RUNNING expected:0 pid:4285",
        ),
        (
            process_state("sleeper", "sleeper", &pt(Running, Stopping, 0, 4857)),
            "PROCESS_STATE_STOPPING",
            "processname:sleeper groupname:sleeper from_state:RUNNING pid:4857",
        ),
        (
            process_state("sleeper", "sleeper", &pt(Stopping, Stopped, 0, 4857)),
            "PROCESS_STATE_STOPPED",
            "processname:sleeper groupname:sleeper from_state:STOPPING pid:4857",
        ),
        (
            process_state("sleeper", "sleeper", &pt(Backoff, Stopped, 2, 0)),
            "PROCESS_STATE_STOPPED",
            "processname:sleeper groupname:sleeper from_state:BACKOFF pid:0",
        ),
        (
            process_state("quick", "quick", &pt(Backoff, Fatal, 4, 0)),
            "PROCESS_STATE_FATAL",
            "processname:quick groupname:quick from_state:BACKOFF",
        ),
        (
            process_state("x", "x", &pt(Stopping, Unknown, 0, 77)),
            "PROCESS_STATE_UNKNOWN",
            "processname:x groupname:x from_state:STOPPING",
        ),
        (
            process_log(Channel::Stdout, "comm", "comm", 4282, b"before\n"),
            "PROCESS_LOG_STDOUT",
            "processname:comm groupname:comm pid:4282 channel:stdout\nbefore\n",
        ),
        (
            process_log(Channel::Stderr, "comm", "comm", 4282, b"to stderr\n"),
            "PROCESS_LOG_STDERR",
            "processname:comm groupname:comm pid:4282 channel:stderr\nto stderr\n",
        ),
        (
            process_communication(Channel::Stdout, "comm", "comm", 4282, b"hello comm"),
            "PROCESS_COMMUNICATION_STDOUT",
            "processname:comm groupname:comm pid:4282\nhello comm",
        ),
        (
            process_communication(Channel::Stderr, "comm", "comm", 4282, b"hello comm"),
            "PROCESS_COMMUNICATION_STDERR",
            "processname:comm groupname:comm pid:4282\nhello comm",
        ),
        (
            remote_communication("mytype", "some data"),
            "REMOTE_COMMUNICATION",
            "type:mytype\nsome data",
        ),
        (
            supervisor_state_change(true),
            "SUPERVISOR_STATE_CHANGE_RUNNING",
            "",
        ),
        (
            supervisor_state_change(false),
            "SUPERVISOR_STATE_CHANGE_STOPPING",
            "",
        ),
        (tick(Tick::Tick5, 1795429215), "TICK_5", "when:1795429215"),
        (tick(Tick::Tick60, 1795429200), "TICK_60", "when:1795429200"),
        (
            tick(Tick::Tick3600, 1795428000),
            "TICK_3600",
            "when:1795428000",
        ),
        (
            process_group(true, "raw"),
            "PROCESS_GROUP_ADDED",
            "groupname:raw\n",
        ),
        (
            process_group(false, "comm"),
            "PROCESS_GROUP_REMOVED",
            "groupname:comm\n",
        ),
    ];
    for (n, name, payload) in cases {
        assert_eq!(n.event_type.name(), name);
        assert_eq!(&*n.payload, payload, "{name}");
        assert_eq!(n.payload_len(), payload.len(), "{name}: ASCII len is bytes");
        // superlance parses with childutils.eventdata(payload + '\n').
        if !payload.is_empty() {
            let first = payload.split('\n').next().unwrap();
            assert!(childutils_headers(first).is_some(), "{name}: {first}");
        }
    }
    // expected:1 for an expected exit, and supervisord's default when unknown.
    let ok = ProcessTransition {
        expected: Some(true),
        ..pt(Running, Exited, 0, 9)
    };
    assert!(
        process_state("a", "g", &ok)
            .payload
            .ends_with("expected:1 pid:9")
    );
    let unknown = pt(Running, Exited, 0, 9);
    assert!(
        process_state("a", "g", &unknown)
            .payload
            .ends_with("expected:1 pid:9")
    );
}

#[test]
fn header_matches_the_verified_capture() {
    // SUPERVISORD.md §3.1, byte for byte.
    let n = process_state(
        "sleeper",
        "sleeper",
        &pt(ProcessState::Starting, ProcessState::Running, 0, 4285),
    );
    let bytes = envelope("supervisor", 21, "raw", 21, &n);
    assert_eq!(
        bytes,
        "ver:3.0 server:supervisor serial:21 pool:raw poolserial:21 eventname:PROCESS_STATE_RUNNING len:66\n\
         processname:sleeper groupname:sleeper from_state:STARTING pid:4285"
    );
    // Header tokens as childutils reads them, in order.
    let line = bytes.split('\n').next().unwrap();
    let keys: Vec<String> = childutils_headers(line)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        keys,
        [
            "ver",
            "server",
            "serial",
            "pool",
            "poolserial",
            "eventname",
            "len"
        ]
    );
    // Empty payloads: len:0 and nothing after the header.
    let e = envelope("supervisor", 0, "p", 0, &supervisor_state_change(true));
    assert_eq!(
        e,
        "ver:3.0 server:supervisor serial:0 pool:p poolserial:0 eventname:SUPERVISOR_STATE_CHANGE_RUNNING len:0\n"
    );
}

#[test]
fn len_counts_code_points_not_bytes() {
    // The verified case: é and ö give len:67 for 69 bytes.
    let n = process_log(
        Channel::Stdout,
        "comm",
        "comm",
        4282,
        "héllo wörld".as_bytes(),
    );
    assert_eq!(n.payload.len(), 69, "bytes");
    assert_eq!(n.payload_len(), 67, "code points");
    let e = envelope("supervisor", 3, "p", 1, &n);
    assert!(e.starts_with(
        "ver:3.0 server:supervisor serial:3 pool:p poolserial:1 eventname:PROCESS_LOG_STDOUT len:67\n"
    ));
    assert!(e.ends_with("channel:stdout\nhéllo wörld"));
    // Astral characters are one code point each (Python 3 str), not two UTF-16 units.
    assert_eq!(code_points("a😀b"), 3);
}

#[test]
fn undecodable_output_is_python_repr() {
    // (data, what Python's 'Undecodable: %r' % data gives)
    let cases: &[(&[u8], &str)] = &[
        (b"\xff\xfeab", r"Undecodable: b'\xff\xfeab'"),
        (b"it's \xff", r#"Undecodable: b"it's \xff""#),
        (b"'\"\xff", r#"Undecodable: b'\'"\xff'"#),
        (
            b"a\\b\x00\x7f\t\r\n\x80",
            r"Undecodable: b'a\\b\x00\x7f\t\r\n\x80'",
        ),
        // a UTF-8 character split across two reads: both halves are undecodable
        (&"é".as_bytes()[..1], r"Undecodable: b'\xc3'"),
    ];
    for (data, want) in cases {
        assert_eq!(decode_output(data), *want);
    }
    assert_eq!(decode_output(b"plain"), "plain");
    let n = process_log(Channel::Stderr, "p", "g", 1, b"\xff\n");
    assert_eq!(
        &*n.payload,
        "processname:p groupname:g pid:1 channel:stderr\nUndecodable: b'\\xff\\n'"
    );
}

#[test]
fn vigil_payloads_are_childutils_safe() {
    let t = TradingTransition {
        from: TradingState::Active,
        to: TradingState::Halted,
        reason: "drawdown 12.5% > 10%\nsecond line".into(),
        source: Source::Rule("dd".into()),
        actor: "vigil".into(),
        values: Values::new(),
        at_ms: 1795429215123,
    };
    let n = vigil_trading_state(&t);
    assert_eq!(n.event_type, EventType::VigilTradingState);
    assert_eq!(
        &*n.payload,
        "from:ACTIVE to:HALTED source_kind:rule source:dd actor:vigil at_ms:1795429215123\ndrawdown 12.5% > 10%\nsecond line"
    );
    // An operator with an awkward name stays one token with one colon.
    let t2 = TradingTransition {
        source: Source::Operator("jo doe:ops".into()),
        actor: "jo doe:ops".into(),
        ..t
    };
    let n2 = vigil_trading_state(&t2);
    assert!(n2.payload.starts_with(
        "from:ACTIVE to:HALTED source_kind:operator source:jo%20doe%3Aops actor:jo%20doe%3Aops "
    ));
    let c = StatusChange {
        source: Source::Rule("dd".into()),
        action: Action::Halt,
        auto_resume_after_ms: None,
        previous: Status::Ok,
        current: CheckStatus {
            subject: Some("BTC/USD".into()),
            ..CheckStatus::new(
                Status::Critical,
                Some(12.5),
                Some(10.0),
                "drawdown 12.5% exceeds 10%".into(),
            )
        },
    };
    let n3 = vigil_check(&c, "drawdown");
    assert_eq!(n3.event_type, EventType::VigilCheck);
    assert_eq!(
        &*n3.payload,
        "source_kind:rule source:dd kind:drawdown status:critical previous:ok action:halt value:12.5 threshold:10 subject:BTC/USD\ndrawdown 12.5% exceeds 10%"
    );
    let unknown = StatusChange {
        current: CheckStatus::unknown("no data"),
        previous: Status::Critical,
        action: Action::Warn,
        source: Source::Check("feed".into()),
        ..c
    };
    assert_eq!(
        &*vigil_check(&unknown, "freshness").payload,
        "source_kind:check source:feed kind:freshness status:unknown previous:critical action:warn\nno data"
    );
    for n in [n, n2, n3] {
        let first = n.payload.split('\n').next().unwrap();
        assert!(childutils_headers(first).is_some(), "{first}");
    }
    assert_eq!(token("a%b c\td:e\u{85}"), "a%25b%20c%09d%3Ae%C2%85");
    assert!(matches!(token("plain-id_1.x/y"), Cow::Borrowed(_)));
    assert!(is_valid_token("supervisor") && !is_valid_token("a b") && !is_valid_token("a:b"));
}

#[test]
fn ticker_emits_when_the_slice_changes_never_at_startup() {
    let mut t = Ticker::new();
    assert!(t.on_time(1795427999).is_empty(), "no tick at startup");
    assert!(t.on_time(1795427999).is_empty());
    let fx = t.on_time(1795428000); // a multiple of 5, 60 and 3600
    let got: Vec<(&str, &str)> = fx
        .iter()
        .map(|n| (n.event_type.name(), &*n.payload))
        .collect();
    assert_eq!(
        got,
        vec![
            ("TICK_5", "when:1795428000"),
            ("TICK_60", "when:1795428000"),
            ("TICK_3600", "when:1795428000"),
        ]
    );
    let fx = t.on_time(1795428007);
    assert_eq!(fx, vec![tick(Tick::Tick5, 1795428005)]);
    assert!(t.on_time(1795428009).is_empty());
    assert_eq!(
        t.on_time(1795428060),
        vec![
            tick(Tick::Tick5, 1795428060),
            tick(Tick::Tick60, 1795428060)
        ]
    );
}

#[test]
fn serial_counters_start_at_zero_and_wrap_at_maxsize() {
    let mut s = SerialCounter::new();
    assert_eq!((s.next_serial(), s.next_serial()), (0, 1));
    let mut w = SerialCounter::after(SerialCounter::MAX - 1);
    assert_eq!(w.next_serial(), SerialCounter::MAX);
    assert_eq!(w.next_serial(), 0);
}

// ---------------------------------------------------------------- listener

fn busy(serial: u64) -> Listener {
    let mut l = Listener::new();
    assert_eq!(l.feed(b"READY\n"), vec![ListenerEffect::BecameReady]);
    l.sent(serial).unwrap();
    l
}

#[test]
fn listener_transitions_table() {
    use ListenerEffect as E;
    use ListenerState::*;
    // (start busy with serial 7?, reads, effects, final state)
    let pe = |error| E::ProtocolError {
        error,
        in_flight: None,
    };
    let pe7 = |error| E::ProtocolError {
        error,
        in_flight: Some(7),
    };
    type Case = (
        bool,
        &'static [&'static [u8]],
        Vec<ListenerEffect>,
        ListenerState,
    );
    let cases: Vec<Case> = vec![
        // ACKNOWLEDGED
        (false, &[b"READY\n"], vec![E::BecameReady], Ready),
        (false, &[b"REA", b"DY", b"\n"], vec![E::BecameReady], Ready),
        (false, &[b"READY"], vec![], Acknowledged),
        (
            false,
            &[b"READX\n"],
            vec![pe(ProtocolError::NotReady {
                got: b"READX".to_vec(),
            })],
            Unknown,
        ),
        (
            false,
            &[b"ready\n"],
            vec![pe(ProtocolError::NotReady { got: b"r".to_vec() })],
            Unknown,
        ),
        // READY: any byte is spurious
        (
            false,
            &[b"READY\nREADY\n"],
            vec![E::BecameReady, pe(ProtocolError::Spurious { byte: b'R' })],
            Unknown,
        ),
        (
            false,
            &[b"READY\n", b"\n"],
            vec![E::BecameReady, pe(ProtocolError::Spurious { byte: b'\n' })],
            Unknown,
        ),
        // BUSY
        (
            true,
            &[b"RESULT 2\nOK"],
            vec![E::Accepted { serial: 7 }],
            Acknowledged,
        ),
        (
            true,
            &[b"RES", b"ULT 2", b"\n", b"O", b"K"],
            vec![E::Accepted { serial: 7 }],
            Acknowledged,
        ),
        (
            true,
            &[b"RESULT 2\nOKREADY\n"],
            vec![E::Accepted { serial: 7 }, E::BecameReady],
            Ready,
        ),
        (
            true,
            &[b"RESULT 4\nFAIL"],
            vec![E::Rejected {
                serial: 7,
                body: b"FAIL".to_vec(),
            }],
            Acknowledged,
        ),
        (
            true,
            &[b"RESULT 3\nOK\n"],
            vec![E::Rejected {
                serial: 7,
                body: b"OK\n".to_vec(),
            }],
            Acknowledged,
        ),
        (
            true,
            &[b"RESULT 0\n"],
            vec![E::Rejected {
                serial: 7,
                body: vec![],
            }],
            Acknowledged,
        ),
        // supervisord skips 7 bytes without checking the word, and Python's int()
        // allows whitespace, a sign and underscores.
        (
            true,
            &[b"XXXXXX 2\nOK"],
            vec![E::Accepted { serial: 7 }],
            Acknowledged,
        ),
        (
            true,
            &[b"RESULT  +2\r\nOK"],
            vec![E::Accepted { serial: 7 }],
            Acknowledged,
        ),
        (
            true,
            &[b"RESULT 0_2\nOK"],
            vec![E::Accepted { serial: 7 }],
            Acknowledged,
        ),
        // RESULT 2\nOK followed by a stray \n: the \n precedes the next READY.
        (
            true,
            &[b"RESULT 2\nOK\nREADY\n"],
            vec![
                E::Accepted { serial: 7 },
                pe(ProtocolError::NotReady {
                    got: b"\n".to_vec(),
                }),
            ],
            Unknown,
        ),
        (
            true,
            &[b"RESULT x\n"],
            vec![pe7(ProtocolError::BadResultLine {
                line: b"RESULT x".to_vec(),
            })],
            Unknown,
        ),
        (
            true,
            &[b"OK\n"],
            vec![pe7(ProtocolError::BadResultLine {
                line: b"OK".to_vec(),
            })],
            Unknown,
        ),
        (
            true,
            &[b"RESULT -1\nOK"],
            vec![pe7(ProtocolError::BadResultLine {
                line: b"RESULT -1".to_vec(),
            })],
            Unknown,
        ),
        (true, &[b"RESULT 2"], vec![], Busy),
        (true, &[b"RESULT 2\nO"], vec![], Busy),
        // UNKNOWN swallows everything after the violation
        (
            true,
            &[b"garbage\n", b"RESULT 2\nOK", b"READY\n"],
            vec![pe7(ProtocolError::BadResultLine {
                line: b"garbage".to_vec(),
            })],
            Unknown,
        ),
    ];
    for (is_busy, reads, want, state) in cases {
        let mut l = if is_busy { busy(7) } else { Listener::new() };
        let got: Vec<ListenerEffect> = reads.iter().flat_map(|r| l.feed(r)).collect();
        assert_eq!(got, want, "{reads:?}");
        assert_eq!(l.state(), state, "{reads:?}");
    }
}

#[test]
fn long_result_line_and_big_bodies_are_bounded() {
    let mut l = busy(1);
    let fx = l.feed(&vec![b'9'; MAX_RESULT_LINE + 1]);
    assert_eq!(
        fx,
        vec![ListenerEffect::ProtocolError {
            error: ProtocolError::ResultLineTooLong,
            in_flight: Some(1)
        }]
    );
    // A big body is counted, not stored.
    let mut l = busy(2);
    assert!(l.feed(b"RESULT 100000\n").is_empty());
    for _ in 0..99 {
        assert!(l.feed(&[b'x'; 1000]).is_empty());
    }
    let fx = l.feed(&[b'x'; 1000]);
    assert_eq!(
        fx,
        vec![ListenerEffect::Rejected {
            serial: 2,
            body: vec![b'x'; MAX_BODY_KEPT]
        }]
    );
}

#[test]
fn listener_reset_abort_and_sent_guard() {
    let mut l = Listener::new();
    assert_eq!(l.sent(1), Err(ListenerState::Acknowledged));
    let mut l = busy(5);
    assert_eq!(l.in_flight(), Some(5));
    assert_eq!(l.abort(), Some(5));
    assert_eq!(l.state(), ListenerState::Ready);
    l.sent(6).unwrap();
    l.feed(b"junk\n");
    assert_eq!(l.state(), ListenerState::Unknown);
    assert_eq!(l.reset(), None, "in-flight was handed over with the error");
    assert_eq!(l.state(), ListenerState::Acknowledged);
    assert_eq!(l.feed(b"READY\n"), vec![ListenerEffect::BecameReady]);
}

#[test]
fn python_int_rules() {
    let cases: &[(&[u8], Option<usize>)] = &[
        (b"2", Some(2)),
        (b" 2 ", Some(2)),
        (b"\t+2\x0c", Some(2)),
        (b"002", Some(2)),
        (b"1_000", Some(1000)),
        (b"-0", Some(0)),
        (b"-1", None),
        (b"", None),
        (b" ", None),
        (b"_1", None),
        (b"1_", None),
        (b"1__0", None),
        (b"0x10", None),
        (b"2 2", None),
        (b"99999999999999999999999999", None),
    ];
    for (b, want) in cases {
        assert_eq!(parse_python_int(b), *want, "{b:?}");
    }
}

// ---------------------------------------------------------------- pool

mod pools;
