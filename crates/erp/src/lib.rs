//! ERP order lines (issue 14): the area that adds OilMat's "pumped oil" orders as lines on a workshop's work card
//! in its ERP, by driving the ERP's web pages as oilmat-erp did (spec `oilmat.md`). `model` holds its words,
//! `connector` drives the ERPs with a real browser, and `sim` simulates both ERPs for the tests and the demo.

pub mod model;
pub mod sim;

pub use model::{Amount, Credentials, ErpType, LineOrder, OrderRef, OrderStatus, Reason};
