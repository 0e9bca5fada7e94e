//! Simulators of iikoCloud (spec `pos_protocols.md` B.11) and iikoServer (B.12).

pub mod cloud;
pub mod server;
