//! vigil.toml through `vigil::config::load_str` (the main loader, `[auth]` included) and the
//! monitor's tables through `vigil::monitor::config::parse_text`: never panic, and every error
//! renders and is located on a line of the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_fuzz::{check_errors, scratch};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let s = scratch();
    if !s.admits(text) {
        return;
    }
    let path = s.config_file("vigil.toml", text);
    if let Err(errors) = vigil::config::load_str(&path, text) {
        check_errors(&path, text, &errors);
    }
    if let Err(errors) = vigil::monitor::config::parse_text(&path, text) {
        check_errors(&path, text, &errors);
    }
});
