//! The same properties as `toml_config`, on the same parsers, as a pure function of the text
//! (`vigil::config::load_str_without_io`, then `vigil::monitor::config::parse`): no scratch
//! directory, no directory created or probed, no log file opened, no user or host looked up.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_fuzz::{check_errors, pure_dir};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = pure_dir().join("vigil.toml");
    if let Err(errors) = vigil::config::load_str_without_io(&path, text) {
        check_errors(&path, text, &errors);
    }
    if let Err(errors) = vigil::monitor::config::parse(&path, text) {
        check_errors(&path, text, &errors);
    }
});
