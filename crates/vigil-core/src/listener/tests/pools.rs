//! Pools: dispatch, redelivery, death mid-event, overflow and replay.

use super::*;

#[test]
fn dispatches_only_to_ready_and_running_listeners() {
    let mut p = Pool::new(cfg("raw", "REMOTE_COMMUNICATION", 10, 1));
    let fx = p.on(Input::Offer(ev(1, 21)), 0);
    assert!(matches!(
        fx[..],
        [Effect::Buffered {
            serial: 21,
            poolserial: 0,
            ..
        }]
    ));
    // spawned, READY, but still STARTING: nothing sent
    p.on(Input::Spawned { process: 0 }, 0);
    let fx = output(&mut p, 0, b"READY\n");
    assert_eq!(fx, vec![Effect::Ready { process: 0 }]);
    // RUNNING: sent, with the exact envelope
    let fx = p.on(
        Input::ProcessState {
            process: 0,
            state: ProcessState::Running,
        },
        0,
    );
    assert_eq!(
        sent_text(&fx),
        vec![
            "ver:3.0 server:supervisor serial:21 pool:raw poolserial:0 eventname:REMOTE_COMMUNICATION len:14\ntype:t\nevent 1"
                .to_string()
        ]
    );
    assert_eq!(p.listener_state(0), Some(ListenerState::Busy));
    assert_eq!(p.in_flight(0), Some((21, 0)));
    // while BUSY, new events wait
    let fx = p.on(Input::Offer(ev(2, 22)), 0);
    assert!(sends(&fx).is_empty());
    assert_eq!(p.buffered(), 1);
    // OK + READY in one read: accepted, and the next event goes out at once
    let fx = output(&mut p, 0, b"RESULT 2\nOKREADY\n");
    assert_eq!(
        fx[..2],
        [
            Effect::Accepted {
                process: 0,
                serial: 21,
                poolserial: 0,
                seq: Some(1)
            },
            Effect::Ready { process: 0 },
        ]
    );
    assert_eq!(sends(&fx), vec![(0, 22, 1)]);
    // a listener that is not RUNNING (STOPPING) gets nothing even when READY
    output(&mut p, 0, b"RESULT 2\nOK");
    p.on(
        Input::ProcessState {
            process: 0,
            state: ProcessState::Stopping,
        },
        0,
    );
    p.on(Input::Offer(ev(3, 23)), 0);
    let fx = output(&mut p, 0, b"READY\n");
    assert!(sends(&fx).is_empty());
    assert_eq!(p.stats().accepted, 2);
}

#[test]
fn numprocs_process_in_parallel_in_creation_order() {
    let mut p = Pool::new(cfg("multi", "EVENT", 10, 3));
    for i in 1..=4 {
        p.on(Input::Offer(ev(i, i + 100)), 0);
    }
    let mut all = Vec::new();
    for i in [2, 0, 1] {
        all.extend(sends(&start(&mut p, i)));
    }
    // whoever becomes READY first takes the oldest; one event each
    assert_eq!(all, vec![(2, 101, 0), (0, 102, 1), (1, 103, 2)]);
    assert_eq!(p.buffered(), 1);
    // two READY at once: the first in creation order wins
    let mut q = Pool::new(cfg("multi", "EVENT", 10, 2));
    for i in [1, 0] {
        q.on(Input::Spawned { process: i }, 0);
        output(&mut q, i, b"READY\n");
    }
    for i in [1, 0] {
        q.on(
            Input::ProcessState {
                process: i,
                state: ProcessState::Running,
            },
            0,
        );
    }
    let fx = q.on(Input::Offer(ev(1, 1)), 0);
    assert_eq!(sends(&fx), vec![(0, 1, 0)]);
}

#[test]
fn fail_redelivers_at_the_head_of_the_same_pool_only() {
    // The upstream bug (SUPERVISORD.md §3.6): pool a FAILs a REMOTE_COMMUNICATION and
    // supervisord re-queues it into b as well (equal priority), although b subscribes
    // to PROCESS_GROUP_ADDED only. Here b never sees it.
    let mut pools = Pools::new(
        vec![
            Pool::new(cfg("a", "REMOTE_COMMUNICATION", 10, 1)),
            Pool::new(cfg("b", "PROCESS_GROUP_ADDED", 10, 1)),
            Pool::new(cfg("c", "EVENT", 10, 1)),
        ],
        SerialCounter::new(),
    );
    let (a, b, c) = (0, 1, 2);
    // no subscriber, no serial consumed
    let mut lonely = Pools::new(
        vec![Pool::new(cfg("x", "TICK", 10, 1))],
        SerialCounter::new(),
    );
    assert_eq!(lonely.serial_for(EventType::RemoteCommunication), None);
    assert_eq!(lonely.serial_for(EventType::Tick5), Some(0));

    let on = |pools: &mut Pools, pool: usize, input: Input<'_>| pools.on(pool, input, 0);
    for pool in [a, b, c] {
        on(&mut pools, pool, Input::Spawned { process: 0 });
        on(
            &mut pools,
            pool,
            Input::ProcessState {
                process: 0,
                state: ProcessState::Running,
            },
        );
        on(
            &mut pools,
            pool,
            Input::Output {
                process: 0,
                bytes: b"READY\n",
            },
        );
    }
    let e1 = PoolEvent {
        seq: Some(1),
        serial: pools.serial_for(EventType::RemoteCommunication).unwrap(),
        notification: remote_communication("mytype", "some data"),
    };
    let e2 = PoolEvent {
        seq: Some(2),
        serial: pools.serial_for(EventType::RemoteCommunication).unwrap(),
        notification: remote_communication("mytype", "more"),
    };
    let fx = pools.offer(&e1, 0);
    let who: Vec<(usize, u64)> = fx
        .iter()
        .filter_map(|(p, e)| match e {
            Effect::Send { serial, .. } => Some((*p, *serial)),
            _ => None,
        })
        .collect();
    assert_eq!(who, vec![(a, 0), (c, 0)], "b does not subscribe");
    pools.offer(&e2, 0);
    // a FAILs serial 0 three times; it comes back at the head, same serials, each time
    for attempt in 1..=3 {
        let fx = on(
            &mut pools,
            a,
            Input::Output {
                process: 0,
                bytes: b"RESULT 4\nFAIL",
            },
        );
        assert_eq!(
            fx,
            vec![
                Effect::Rejected {
                    process: 0,
                    serial: 0,
                    poolserial: 0,
                    body: b"FAIL".to_vec(),
                    attempts: attempt
                },
                Effect::Requeued {
                    process: 0,
                    serial: 0,
                    poolserial: 0,
                    cause: Requeue::Rejected
                },
            ]
        );
        let fx = on(
            &mut pools,
            a,
            Input::Output {
                process: 0,
                bytes: b"READY\n",
            },
        );
        // immediate retry (supervisord's default), ahead of serial 1
        assert_eq!(sends(&fx), vec![(0, 0, 0)]);
    }
    let b_pool = pools.get(b).unwrap();
    assert_eq!(b_pool.buffered(), 0);
    assert_eq!(b_pool.in_flight(0), None);
    assert_eq!(b_pool.stats(), PoolStats::default(), "b never touched");
    let c_pool = pools.get(c).unwrap();
    assert_eq!(
        c_pool.in_flight(0),
        Some((0, 0)),
        "c holds only its own copy"
    );
    assert_eq!(c_pool.buffered(), 1);
    assert_eq!(c_pool.stats().rejected, 0);
    assert_eq!(c_pool.stats().redelivered, 0);
    let a_pool = pools.get(a).unwrap();
    assert_eq!(a_pool.stats().rejected, 3);
    assert_eq!(a_pool.stats().redelivered, 3);
    assert_eq!(a_pool.stats().sent, 4);
}

#[test]
fn death_mid_event_redelivers_to_the_next_incarnation_first() {
    let mut p = Pool::new(cfg("raw", "EVENT", 10, 1));
    start(&mut p, 0);
    p.on(Input::Offer(ev(1, 21)), 0);
    p.on(Input::Offer(ev(2, 22)), 0);
    assert_eq!(p.in_flight(0), Some((21, 0)));
    output(&mut p, 0, b"RESULT 2\nO"); // dies halfway through its answer
    let fx = p.on(Input::Exited { process: 0 }, 0);
    assert_eq!(
        fx,
        vec![Effect::Requeued {
            process: 0,
            serial: 21,
            poolserial: 0,
            cause: Requeue::Died
        }]
    );
    assert_eq!(p.buffered(), 2);
    let fx = start(&mut p, 0);
    assert_eq!(
        sends(&fx),
        vec![(0, 21, 0)],
        "same serial and poolserial, first"
    );
    let fx = output(&mut p, 0, b"RESULT 2\nOKREADY\n");
    assert_eq!(sends(&fx), vec![(0, 22, 1)]);
    assert_eq!(p.stats().lost, 0);
}

#[test]
fn protocol_error_requeues_and_the_listener_stays_deaf_until_respawned() {
    let mut p = Pool::new(cfg("raw", "EVENT", 10, 2));
    start(&mut p, 0);
    p.on(Input::Offer(ev(1, 1)), 0);
    let fx = output(&mut p, 0, b"garbage\n");
    assert_eq!(
        fx,
        vec![
            Effect::ProtocolError {
                process: 0,
                error: ProtocolError::BadResultLine {
                    line: b"garbage".to_vec()
                }
            },
            Effect::Requeued {
                process: 0,
                serial: 1,
                poolserial: 0,
                cause: Requeue::ProtocolError
            },
        ]
    );
    assert_eq!(p.listener_state(0), Some(ListenerState::Unknown));
    // the other process of the same pool gets it
    let fx = start(&mut p, 1);
    assert_eq!(sends(&fx), vec![(1, 1, 0)]);
    // process 0 says READY again: ignored while UNKNOWN
    p.on(Input::Offer(ev(2, 2)), 0);
    assert!(sends(&output(&mut p, 0, b"READY\n")).is_empty());
    assert_eq!(p.buffered(), 1);
    // a respawn recovers it
    let fx = start(&mut p, 0);
    assert_eq!(sends(&fx), vec![(0, 2, 1)]);
}

#[test]
fn write_failure_requeues_and_skips_that_process() {
    let mut p = Pool::new(cfg("raw", "EVENT", 10, 2));
    start(&mut p, 0);
    p.on(Input::Offer(ev(1, 1)), 0);
    let fx = p.on(Input::WriteFailed { process: 0 }, 0);
    assert_eq!(
        fx,
        vec![Effect::Requeued {
            process: 0,
            serial: 1,
            poolserial: 0,
            cause: Requeue::WriteFailed
        }]
    );
    assert_eq!(p.buffered(), 1, "not resent to the broken pipe");
    let fx = start(&mut p, 1);
    assert_eq!(sends(&fx), vec![(1, 1, 0)]);
}

#[test]
fn optional_retry_delay_holds_the_pool_after_a_fail() {
    let mut p = Pool::new(PoolConfig {
        retry_delay_ms: 250,
        ..cfg("raw", "EVENT", 10, 1)
    });
    start(&mut p, 0);
    p.on(Input::Offer(ev(1, 1)), 1000);
    let fx = p.on(
        Input::Output {
            process: 0,
            bytes: b"RESULT 4\nFAILREADY\n",
        },
        1000,
    );
    assert!(fx.contains(&Effect::RetryAfter { ms: 250 }));
    assert!(sends(&fx).is_empty());
    assert_eq!(p.next_deadline(), Some(1250));
    assert!(sends(&p.on(Input::Timer, 1249)).is_empty());
    assert_eq!(sends(&p.on(Input::Timer, 1250)), vec![(0, 1, 0)]);
    assert_eq!(p.next_deadline(), None);
}

/// A stand-in for the shell: a store, live offers, replays on request, and listeners
/// that answer as told.
struct Shell {
    pool: Pool,
    store: Vec<PoolEvent>,
    accepted: Vec<u64>,
    effects: Vec<Effect>,
    replay_wanted: bool,
}

impl Shell {
    fn new(pool: Pool) -> Self {
        Shell {
            pool,
            store: Vec::new(),
            accepted: Vec::new(),
            effects: Vec::new(),
            replay_wanted: false,
        }
    }

    fn feed(&mut self, input: Input<'_>) {
        let fx = self.pool.on(input, 0);
        for e in &fx {
            match e {
                Effect::Accepted { seq: Some(s), .. } => self.accepted.push(*s),
                Effect::ReplayFrom { .. } => self.replay_wanted = true,
                _ => {}
            }
        }
        self.effects.extend(fx);
        if self.replay_wanted {
            self.replay_wanted = false;
            self.replay();
        }
    }

    /// Store a new event, then offer it live.
    fn publish(&mut self) {
        let seq = self.store.len() as u64 + 1;
        let e = ev(seq, seq + 1000);
        self.store.push(e.clone());
        self.feed(Input::Offer(e));
    }

    fn replay(&mut self) {
        while let Some(from) = self.pool.wants_replay_from() {
            let mut s = from;
            loop {
                if self.pool.wants_replay_from().is_none() {
                    return;
                }
                match self.store.get(s as usize - 1).cloned() {
                    Some(e) => {
                        let fx = self.pool.on(Input::Replay(e), 0);
                        for e in &fx {
                            if let Effect::Accepted { seq: Some(x), .. } = e {
                                self.accepted.push(*x);
                            }
                        }
                        self.effects.extend(fx);
                        s += 1;
                    }
                    None => {
                        let fx = self.pool.on(Input::ReplayEnd { next_seq: s }, 0);
                        self.effects.extend(fx);
                        break;
                    }
                }
            }
        }
    }

    fn answer(&mut self, process: usize, ok: bool) {
        if self.pool.in_flight(process).is_some() {
            let bytes: &[u8] = if ok {
                b"RESULT 2\nOKREADY\n"
            } else {
                b"RESULT 4\nFAILREADY\n"
            };
            self.feed(Input::Output { process, bytes });
        }
    }

    fn restart(&mut self, process: usize) {
        self.feed(Input::Exited { process });
        self.feed(Input::Spawned { process });
        self.feed(Input::ProcessState {
            process,
            state: ProcessState::Running,
        });
        self.feed(Input::Output {
            process,
            bytes: b"READY\n",
        });
    }

    fn drain(&mut self) {
        for _ in 0..10_000 {
            let n = self.pool.config().numprocs;
            for i in 0..n {
                if self.pool.listener_state(i) != Some(ListenerState::Busy)
                    && self.pool.listener_state(i) != Some(ListenerState::Ready)
                {
                    self.restart(i);
                }
                self.answer(i, true);
            }
            self.replay();
            if self.pool.buffered() == 0
                && self.pool.backlog() == 0
                && (0..n).all(|i| self.pool.in_flight(i).is_none())
            {
                return;
            }
        }
        panic!("did not drain");
    }
}

#[test]
fn overflow_defers_to_the_store_and_replays_without_loss() {
    let mut sh = Shell::new(Pool::new(cfg("raw", "EVENT", 2, 1)));
    // 12 events before the listener is up (supervisord's startup case: it would drop 10)
    for _ in 0..12 {
        sh.publish();
    }
    let overflowed: Vec<&Effect> = sh
        .effects
        .iter()
        .filter(|e| matches!(e, Effect::Overflowed { .. }))
        .collect();
    assert_eq!(overflowed, vec![&Effect::Overflowed { from_seq: 3 }]);
    assert_eq!(sh.pool.buffered(), 2);
    assert_eq!(sh.pool.backlog(), 10);
    assert_eq!(sh.pool.wants_replay_from(), None, "no room yet");
    assert!(
        !sh.effects
            .iter()
            .any(|e| matches!(e, Effect::ReplayFrom { .. }))
    );

    sh.restart(0);
    // one at a time: each OK makes room, the shell replays, more live events interleave
    for round in 0..30 {
        sh.answer(0, round % 4 != 3); // every fourth answer is a FAIL
        if round % 5 == 0 {
            sh.publish();
        }
    }
    sh.drain();
    let all: Vec<u64> = (1..=sh.store.len() as u64).collect();
    assert_eq!(sh.accepted, all, "every event once, in order");
    let st = sh.pool.stats();
    assert_eq!(st.lost, 0);
    assert!(st.overflows >= 1, "{st:?}");
    assert!(st.replayed >= 10, "{st:?}");
    assert_eq!(
        st.buffered,
        sh.store.len() as u64,
        "each buffered exactly once"
    );
    // poolserials follow acceptance order with no gaps
    let poolserials: Vec<u64> = sh
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Accepted { poolserial, .. } => Some(*poolserial),
            _ => None,
        })
        .collect();
    assert_eq!(poolserials, (0..sh.store.len() as u64).collect::<Vec<_>>());
}

#[test]
fn replayed_events_are_never_buffered_twice() {
    let mut p = Pool::new(cfg("raw", "EVENT", 2, 1));
    for s in 1..=3 {
        p.on(Input::Offer(ev(s, s)), 0);
    }
    assert_eq!(p.backlog(), 1);
    // replays of what it already holds are ignored
    for s in 1..=2 {
        assert!(p.on(Input::Replay(ev(s, s)), 0).is_empty());
    }
    assert_eq!(p.stats().duplicates, 2);
    let fx = start(&mut p, 0); // takes 1: room for one, and 3 is asked for once
    assert_eq!(fx.last(), Some(&Effect::ReplayFrom { seq: 3 }));
    let fx = output(&mut p, 0, b"RESULT 2\nOK");
    assert!(!fx.iter().any(|e| matches!(e, Effect::ReplayFrom { .. })));
    let fx = p.on(Input::Replay(ev(3, 3)), 0);
    assert!(matches!(
        fx[..],
        [Effect::Buffered {
            seq: Some(3),
            replayed: true,
            ..
        }]
    ));
    // the same event arriving live late, or replayed again: duplicate
    assert!(p.on(Input::Offer(ev(3, 3)), 0).is_empty());
    assert!(p.on(Input::Replay(ev(3, 3)), 0).is_empty());
    assert_eq!(p.stats().buffered, 3);
    assert_eq!(p.backlog(), 0);
    assert_eq!(p.wants_replay_from(), None);
}

#[test]
fn order_is_kept_while_a_backlog_exists() {
    let mut p = Pool::new(cfg("raw", "EVENT", 1, 1));
    p.on(Input::Offer(ev(1, 1)), 0);
    let fx = p.on(Input::Offer(ev(2, 2)), 0);
    assert_eq!(
        fx,
        vec![
            Effect::Overflowed { from_seq: 2 },
            Effect::Deferred { seq: 2 }
        ]
    );
    start(&mut p, 0); // 1 in flight, buffer empty → ReplayFrom 2
    // a live event 3 arrives before the shell has replayed 2: it must wait its turn
    let fx = p.on(Input::Offer(ev(3, 3)), 0);
    assert_eq!(fx, vec![Effect::Deferred { seq: 3 }]);
    assert_eq!(p.wants_replay_from(), Some(2));
    let fx = p.on(Input::Replay(ev(2, 2)), 0);
    assert!(matches!(fx[0], Effect::Buffered { seq: Some(2), .. }));
    // full again: replaying 3 now is deferred, and asked for again when there is room
    assert_eq!(
        p.on(Input::Replay(ev(3, 3)), 0),
        vec![Effect::Deferred { seq: 3 }]
    );
    assert_eq!(p.stats().deferred, 2, "3 counted once");
    let fx = output(&mut p, 0, b"RESULT 2\nOKREADY\n");
    assert_eq!(sends(&fx), vec![(0, 2, 1)]);
    assert_eq!(fx.last(), Some(&Effect::ReplayFrom { seq: 3 }));
}

#[test]
fn losses_are_reported_and_counted() {
    let mut p = Pool::new(cfg("raw", "EVENT", 1, 1));
    p.on(Input::Offer(ev(1, 1)), 0);
    // an event the shell did not store cannot be replayed: dropped, loudly
    let unstored = PoolEvent {
        seq: None,
        serial: 9,
        notification: tick(Tick::Tick5, 5),
    };
    assert_eq!(
        p.on(Input::Offer(unstored), 0),
        vec![Effect::Dropped { serial: 9 }]
    );
    p.on(Input::Offer(ev(2, 2)), 0);
    start(&mut p, 0);
    // the store no longer has seq 2 (retention): the replay pass ends without it
    // 2 is not below next_seq 2 (the shell read a stale end): not lost, asked for again
    let fx = p.on(Input::ReplayEnd { next_seq: 2 }, 0);
    assert_eq!(fx, vec![Effect::ReplayFrom { seq: 2 }]);
    let fx = p.on(Input::ReplayEnd { next_seq: 3 }, 0);
    assert_eq!(fx, vec![Effect::Missing { seq: 2 }]);
    assert_eq!(p.stats().lost, 2);
    assert_eq!(p.backlog(), 0);
}

// ---------------------------------------------------------------- properties

/// Split `bytes` at the given cut points.
fn chunks<'a>(bytes: &'a [u8], cuts: &[prop::sample::Index]) -> Vec<&'a [u8]> {
    if bytes.is_empty() {
        return vec![];
    }
    let mut at: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len())).collect();
    at.push(0);
    at.push(bytes.len());
    at.sort_unstable();
    at.dedup();
    at.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
}

fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"READY\n".to_vec()),
        Just(b"RESULT 2\n".to_vec()),
        Just(b"RESULT 4\n".to_vec()),
        Just(b"RESULT 0\n".to_vec()),
        Just(b"OK".to_vec()),
        Just(b"FAIL".to_vec()),
        Just(b"\n".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..8),
    ]
}

/// One listener cycle's bytes: the answer to the event in flight, then READY.
fn session_bytes(results: &[bool]) -> Vec<Vec<u8>> {
    let mut cycles = vec![b"READY\n".to_vec()];
    for ok in results {
        let mut c = if *ok {
            b"RESULT 2\nOK".to_vec()
        } else {
            b"RESULT 4\nFAIL".to_vec()
        };
        c.extend_from_slice(b"READY\n");
        cycles.push(c);
    }
    cycles
}

fn run_session(cycles: &[Vec<u8>], cuts: &[Vec<prop::sample::Index>]) -> Vec<Effect> {
    let mut p = Pool::new(cfg("raw", "EVENT", 50, 1));
    let mut fx = Vec::new();
    for s in 1..=5 {
        fx.extend(p.on(Input::Offer(ev(s, s)), 0));
    }
    fx.extend(p.on(Input::Spawned { process: 0 }, 0));
    fx.extend(p.on(
        Input::ProcessState {
            process: 0,
            state: ProcessState::Running,
        },
        0,
    ));
    for (i, cycle) in cycles.iter().enumerate() {
        // a listener only answers once it was sent something
        if i > 0 && p.in_flight(0).is_none() {
            break;
        }
        let none = Vec::new();
        for chunk in chunks(cycle, cuts.get(i).unwrap_or(&none)) {
            fx.extend(p.on(
                Input::Output {
                    process: 0,
                    bytes: chunk,
                },
                0,
            ));
        }
    }
    fx
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any byte stream, any chunking, from ACKNOWLEDGED or BUSY: the same effects and
    /// the same final state as one big read.
    #[test]
    fn listener_effects_do_not_depend_on_chunking(
        frags in proptest::collection::vec(fragment(), 0..12),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..16),
        start_busy in any::<bool>(),
    ) {
        let bytes: Vec<u8> = frags.concat();
        let fresh = || if start_busy { busy(7) } else { Listener::new() };
        let mut whole = fresh();
        let want = whole.feed(&bytes);
        let mut split = fresh();
        let got: Vec<ListenerEffect> =
            chunks(&bytes, &cuts).into_iter().flat_map(|c| split.feed(c)).collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(split.state(), whole.state());
    }

    /// A valid listener session (READY, then answer + READY per event), each cycle's
    /// bytes split anywhere: the pool's effects equal those of one read per cycle.
    #[test]
    fn pool_session_does_not_depend_on_chunking(
        results in proptest::collection::vec(any::<bool>(), 0..10),
        cuts in proptest::collection::vec(
            proptest::collection::vec(any::<prop::sample::Index>(), 0..6), 0..11),
    ) {
        let cycles = session_bytes(&results);
        let want = run_session(&cycles, &[]);
        let got = run_session(&cycles, &cuts);
        prop_assert_eq!(got, want);
    }

    /// Random schedules of publishes, OK / FAIL answers, deaths and protocol errors with
    /// a tiny buffer: once drained, every stored event was accepted exactly once, in
    /// order for one process, with nothing lost.
    #[test]
    fn nothing_is_lost(
        numprocs in 1usize..3,
        buffer_size in 1usize..4,
        ops in proptest::collection::vec((0u8..6, 0usize..2), 0..80),
    ) {
        let mut sh = Shell::new(Pool::new(cfg("p", "EVENT", buffer_size, numprocs)));
        for (op, who) in ops {
            let who = who % numprocs;
            match op {
                0 | 1 => sh.publish(),
                2 => sh.answer(who, true),
                3 => sh.answer(who, false),
                4 => sh.restart(who),
                _ => sh.feed(Input::Output { process: who, bytes: b"junk\n" }),
            }
        }
        sh.drain();
        let all: Vec<u64> = (1..=sh.store.len() as u64).collect();
        let mut got = sh.accepted.clone();
        if numprocs > 1 {
            got.sort_unstable();
        }
        prop_assert_eq!(got, all);
        prop_assert_eq!(sh.pool.stats().lost, 0);
        prop_assert_eq!(sh.pool.stats().buffered, sh.store.len() as u64);
    }
}
