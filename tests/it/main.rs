#![allow(clippy::unwrap_used, clippy::expect_used)]
//! One integration-test binary (links once): real `vigil`, real children, real SQLite.
mod cli;
mod fuzz;
mod supervisor;
mod support;
mod trading;
