//! The tillwire application: every area wired into one router and one process. `main.rs` is the command line.

pub mod app;
