//! vigil: keeps automated trading systems alive and safe. See ARCHITECTURE.md.
pub mod analyze;
pub mod api;
pub mod auth;
pub mod cli;
pub mod compat;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod events;
pub mod ingest;
pub mod jobs;
pub mod listeners;
pub mod monitor;
pub mod sim;
pub mod store;
pub mod supervisor;
pub mod venue;
