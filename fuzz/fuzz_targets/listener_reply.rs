//! The event-listener reply parser (`vigil_core::listener::Listener::feed`): arbitrary bytes
//! as a listener's stdout, read in arbitrary pieces.
//!
//! Properties:
//! 1. Split invariance: from each starting state (ACKNOWLEDGED, READY, BUSY), feeding the
//!    bytes whole, in two reads split at an arbitrary point, or one byte at a time gives the
//!    same effects in the same order and the same final listener.
//! 2. A session: the supervisor always has an event to send and sends it as soon as a read
//!    leaves the listener READY. Reads end at every `READY\n` of the stream (where a real
//!    listener would wait for its event) and at an arbitrary point more, or at every byte:
//!    the sends and effects do not depend on the extra cuts, and they follow the protocol
//!    (one event in flight at most; every result and protocol error settles exactly the event
//!    in flight; a kept result body is at most `MAX_BODY_KEPT` bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_core::listener::{Listener, ListenerEffect, ListenerState, MAX_BODY_KEPT};

#[derive(Debug, PartialEq)]
enum Step {
    Sent(u64),
    Effect(ListenerEffect),
}

/// A listener that is fresh (0), READY (1) or BUSY with event 1 in flight (2).
fn start(n: usize) -> Listener {
    let mut l = Listener::new();
    if n >= 1 {
        assert_eq!(l.feed(b"READY\n"), vec![ListenerEffect::BecameReady]);
    }
    if n >= 2 {
        assert_eq!(l.sent(1), Ok(()));
    }
    l
}

/// The effects of feeding `data` cut at `cuts` (sorted offsets), and the listener after.
fn feed_cut(mut l: Listener, data: &[u8], cuts: &[usize]) -> (Vec<ListenerEffect>, Listener) {
    let mut fx = Vec::new();
    let mut prev = 0;
    for &c in cuts.iter().chain(std::iter::once(&data.len())) {
        fx.extend(l.feed(&data[prev..c]));
        prev = c;
    }
    (fx, l)
}

/// The session described above, with reads ending at `cuts` besides every `READY\n`.
fn session(data: &[u8], cuts: &[usize]) -> (Vec<Step>, Listener) {
    let mut at: Vec<usize> = data
        .windows(6)
        .enumerate()
        .filter(|(_, w)| *w == b"READY\n")
        .map(|(i, _)| i + 6)
        .chain(cuts.iter().copied())
        .chain(std::iter::once(data.len()))
        .collect();
    at.sort_unstable();
    at.dedup();
    let mut l = Listener::new();
    let mut steps = Vec::new();
    let mut serial = 0;
    let mut prev = 0;
    for c in at {
        if l.state() == ListenerState::Ready {
            serial += 1;
            assert_eq!(l.sent(serial), Ok(()));
            steps.push(Step::Sent(serial));
        }
        steps.extend(l.feed(&data[prev..c]).into_iter().map(Step::Effect));
        prev = c;
    }
    (steps, l)
}

/// The protocol, checked on a log of sends and effects; `in_flight` is the event in flight
/// at the start.
fn check_protocol(steps: &[Step], mut in_flight: Option<u64>) {
    for s in steps {
        match s {
            Step::Sent(n) => {
                assert_eq!(
                    in_flight, None,
                    "sent {n} while {in_flight:?} was in flight"
                );
                in_flight = Some(*n);
            }
            Step::Effect(ListenerEffect::BecameReady) => assert_eq!(in_flight, None),
            Step::Effect(ListenerEffect::Accepted { serial }) => {
                assert_eq!(in_flight.take(), Some(*serial));
            }
            Step::Effect(ListenerEffect::Rejected { serial, body }) => {
                assert_eq!(in_flight.take(), Some(*serial));
                assert!(body.len() <= MAX_BODY_KEPT);
            }
            Step::Effect(ListenerEffect::ProtocolError {
                error,
                in_flight: f,
            }) => {
                assert_eq!(*f, in_flight.take());
                let _ = error.to_string();
            }
        }
    }
}

/// An arbitrary point of `data`, chosen by its content.
fn split_point(data: &[u8]) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (h % (data.len() as u64 + 1)) as usize
}

fuzz_target!(|data: &[u8]| {
    let k = split_point(data);
    let every: Vec<usize> = (1..data.len()).collect();

    for s in 0..3 {
        let whole = feed_cut(start(s), data, &[]);
        assert_eq!(
            whole,
            feed_cut(start(s), data, &[k]),
            "split at {k}, start {s}"
        );
        assert_eq!(
            whole,
            feed_cut(start(s), data, &every),
            "bytewise, start {s}"
        );
        let steps: Vec<Step> = whole.0.into_iter().map(Step::Effect).collect();
        check_protocol(&steps, (s == 2).then_some(1));
    }

    let coarse = session(data, &[]);
    assert_eq!(coarse, session(data, &[k]), "session split at {k}");
    assert_eq!(coarse, session(data, &every), "session bytewise");
    check_protocol(&coarse.0, None);
});
