//! ERP order lines (issue 14): the area that will add OilMat's "pumped oil" orders as lines on a workshop's work
//! card in its ERP, by driving the ERP's web pages as oilmat-erp did (spec `oilmat.md`). It is being built; for
//! now it holds the simulators of the two ERPs ([`sim`]) that its connectors are to be tested against.

pub mod sim;
