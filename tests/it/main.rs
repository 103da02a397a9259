//! One integration-test binary (links once): real `vigil`, real children, real SQLite.
mod cli;
mod supervisor;
mod support;
