#![allow(clippy::unwrap_used, clippy::expect_used)]
//! One integration-test binary (links once): real `vigil`, real children, real SQLite.
mod analyze;
mod auth;
mod cli;
mod compat;
mod dropin;
mod fake_kraken;
mod fuzz;
mod jobs;
mod listeners;
mod metrics;
mod superlance;
mod supervisor;
mod supervisord_log;
mod support;
mod trading;
mod venue;
