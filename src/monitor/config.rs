//! The monitor's configuration types (`[rules.*] [checks.*] [halt] [alerts.*] [ingest]
//! [events]`). They live in `crate::config::monitor`, which parses them with the rest of the
//! file (`Config::monitor`); re-exported here for the monitor's code.

pub use crate::config::monitor::*;
