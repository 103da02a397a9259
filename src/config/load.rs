//! Loading `vigil.toml`: spanned parse, validation, path checks. (Being written.)
use std::path::Path;

use super::{Config, ConfigErrors};

/// Load and validate a config file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![super::ConfigError {
            file: path.to_path_buf(),
            line: 0,
            col: 0,
            key: String::new(),
            message: format!("cannot read: {e}"),
        }])
    })?;
    load_str(path, &text)
}

/// Validate config text as if read from `path`.
pub fn load_str(_path: &Path, _text: &str) -> Result<Config, ConfigErrors> {
    Err(ConfigErrors(vec![]))
}
