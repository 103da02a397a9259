pub mod event;
pub mod jobs;
pub mod kraken;
pub mod listener;
pub mod program;
pub mod rules;
pub mod trading;
