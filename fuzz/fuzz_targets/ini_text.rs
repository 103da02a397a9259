//! The same properties as `ini`, on the same parser, as a pure function of the text
//! (`vigil::config::load_str_without_io`, `convert_str_without_io`): no scratch directory,
//! no directory created or probed, no `[include]` read, no user or host looked up. Thousands
//! of times faster than `ini`, which does that filesystem work for every input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_fuzz::{check_errors, pure_dir};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = pure_dir().join("supervisord.conf");
    match vigil::config::load_str_without_io(&path, text) {
        Ok(_) => match vigil::config::convert_str_without_io(&path, text) {
            Ok(c) => assert!(
                c.warnings.is_empty(),
                "{}\n--- converted:\n{}",
                c.warnings.join("\n"),
                c.toml
            ),
            Err(e) => panic!("loads, but convert fails:\n{e}"),
        },
        Err(errors) => check_errors(&path, text, &errors),
    }
});
