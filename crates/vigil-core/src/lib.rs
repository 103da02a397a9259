pub mod event;
pub mod kraken;
pub mod listener;
pub mod program;
pub mod report;
pub mod rules;
pub mod trading;
pub mod venue;
