//! The XML-RPC decoder (`vigil::compat::xmlrpc`): `parse_call` (what `/RPC2` reads) and
//! `parse_response` on arbitrary bytes never panic, and whatever they read survives the
//! writer: `call`/`response`/`fault_response` of it read back as the same value, up to what
//! the writer normalises on purpose (ints saturate to 32 bits, characters XML cannot carry
//! become U+FFFD).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil::compat::xmlrpc::{
    Fault, Value, call, capped, fault_response, parse_call, parse_response, response,
};

/// What writing then reading does to a string.
fn text(s: &str) -> String {
    s.chars()
        .map(|c| {
            if matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
            {
                c
            } else {
                '\u{FFFD}'
            }
        })
        .collect()
}

/// What writing then reading does to a value.
fn written(v: &Value) -> Value {
    match v {
        Value::Int(i) => Value::Int(capped(*i)),
        Value::String(s) => Value::String(text(s)),
        Value::Array(items) => Value::Array(items.iter().map(written).collect()),
        Value::Struct(m) => Value::Struct(m.iter().map(|(k, v)| (text(k), written(v))).collect()),
        other => other.clone(),
    }
}

/// Equality with NaN equal to itself.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Double(x), Value::Double(y)) => x == y || (x.is_nan() && y.is_nan()),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Struct(x), Value::Struct(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, a), (kb, b))| ka == kb && same(a, b))
        }
        _ => a == b,
    }
}

fuzz_target!(|data: &[u8]| {
    match parse_call(data) {
        Ok(c) => {
            let again = call(&c.method, &c.params);
            let back = match parse_call(again.as_bytes()) {
                Ok(b) => b,
                Err(e) => panic!("{e}: cannot read back the call written from {c:?}:\n{again}"),
            };
            assert_eq!(back.method, text(&c.method), "{again}");
            let want = Value::Array(c.params.iter().map(written).collect());
            let got = Value::Array(back.params);
            assert!(same(&want, &got), "{want:?} != {got:?}\n{again}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    match parse_response(data) {
        Ok(Ok(v)) => {
            let again = response(&v);
            match parse_response(again.as_bytes()) {
                Ok(Ok(got)) => {
                    let want = written(&v);
                    assert!(same(&want, &got), "{want:?} != {got:?}\n{again}");
                }
                other => panic!("{other:?}: cannot read back the response to {v:?}:\n{again}"),
            }
        }
        Ok(Err(f)) => {
            let again = fault_response(&f);
            let want = Fault {
                code: f.code,
                string: text(&f.string),
            };
            match parse_response(again.as_bytes()) {
                Ok(Err(got)) => assert_eq!(got, want, "{again}"),
                other => panic!("{other:?}: cannot read back the fault {f:?}:\n{again}"),
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
