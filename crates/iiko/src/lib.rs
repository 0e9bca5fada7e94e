//! iiko intake (issue 15): orders from iikoCloud (webhooks and reconciliation polls) and iikoServer (the events
//! journal) become production orders with queue numbers; closed sales come back from iikoServer's OLAP.
//!
//! `sim` simulates both iiko servers for tests and the demo, built from the spec, not from this crate's clients.

pub mod sim;
