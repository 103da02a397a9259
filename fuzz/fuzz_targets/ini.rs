//! supervisord's INI dialect (`src/config/supervisord.rs`) through `vigil::config::load_str`
//! on a `.conf` path: never panics, every error renders and is located in the file, and a
//! config that loads converts (`vigil convert`) to a vigil.toml that loads to the same
//! `Config` (the converter reports any difference as a warning).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_fuzz::{check_converted, check_errors, scratch};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let s = scratch();
    if !s.admits(text) {
        return;
    }
    let path = s.config_file("supervisord.conf", text);
    match vigil::config::load_str(&path, text) {
        Ok(_) => match vigil::config::supervisord::convert(&path) {
            Ok(c) => check_converted(&path, text, &c),
            Err(e) => panic!("loads, but convert fails:\n{e}"),
        },
        Err(errors) => check_errors(&path, text, &errors),
    }
});
