//! vigil: keeps automated trading systems alive and safe. See ARCHITECTURE.md.
pub mod config;
