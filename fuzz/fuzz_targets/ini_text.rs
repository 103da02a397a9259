//! The same properties as `ini`, on the same parser, as a pure function of the text
//! (`vigil::config::convert_str_without_io`, whose load is `load_str`'s): no scratch directory,
//! no directory created or probed, no `[include]` read, no user or host looked up. Thousands
//! of times faster than `ini`, which does that filesystem work for every input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_fuzz::{check_converted, check_errors, pure_dir};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = pure_dir().join("supervisord.conf");
    // `vigil convert` loads the file exactly as `load_str` does (the same function), and fails
    // exactly when that load fails; so one call covers both without loading twice.
    match vigil::config::convert_str_without_io(&path, text) {
        Ok(c) => check_converted(&path, text, &c),
        Err(errors) => check_errors(&path, text, &errors),
    }
});
