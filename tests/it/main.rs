#![allow(clippy::unwrap_used, clippy::expect_used)]
//! One integration-test binary (links once): real `vigil`, real children, real SQLite.
mod auth;
mod cli;
mod compat;
mod durability;
mod fuzz;
mod listeners;
mod metrics;
mod superlance;
mod supervisor;
mod supervisord_log;
mod support;
mod trading;
