//! The same properties as `toml_config`, on the same parsers, as a pure function of the text
//! (`vigil::config::load_str_without_io`, and `vigil::monitor::config::parse_text` where that
//! load did not reach the monitor's tables): no scratch directory, no directory created or
//! probed, no log file opened, no user or host looked up.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_fuzz::{check_errors, pure_dir};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = pure_dir().join("vigil.toml");
    let syntax_error = match vigil::config::load_str_without_io(&path, text) {
        Ok(_) => false,
        Err(errors) => {
            check_errors(&path, text, &errors);
            errors
                .0
                .iter()
                .any(|e| e.message.starts_with("TOML syntax error"))
        }
    };
    // A load parses the monitor's tables from its own tree (`config::monitor::parse`, what
    // `parse_text` runs), unless the file has a syntax error; `parse_text` then still reads
    // the recovered tree. Calling it only then spares parsing every valid file twice.
    if syntax_error && let Err(errors) = vigil::monitor::config::parse_text(&path, text) {
        check_errors(&path, text, &errors);
    }
});
