//! The inbound event schema (`vigil_core::event::parse_body`, HTTP bodies and NDJSON
//! batches): never panics; every line is accepted or refused at most once, with line numbers
//! inside the body; every refusal renders; and every accepted event survives its own wire
//! form (`to_json` read back gives the same event).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_core::event::{event_from_value, parse_body};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (ok, errors) = parse_body(text);
    let lines = text.split('\n').count();
    let mut seen = std::collections::HashSet::new();
    for (line, ev) in &ok {
        assert!(
            (1..=lines).contains(line),
            "accepted line {line} of {lines}"
        );
        assert!(seen.insert(*line), "line {line} twice");
        let wire = ev.to_json();
        match event_from_value(wire.clone()) {
            Ok(back) => assert_eq!(&back, ev, "wire form {wire}"),
            Err(e) => panic!("the wire form {wire} of an accepted event is refused: {e}"),
        }
    }
    for e in &errors {
        assert!(
            (1..=lines).contains(&e.line),
            "refused line {} of {lines}",
            e.line
        );
        assert!(seen.insert(e.line), "line {} twice", e.line);
        let _ = e.to_string();
        let _ = serde_json::to_string(e);
    }
});
