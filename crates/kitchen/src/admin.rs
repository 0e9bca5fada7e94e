//! Admin pages for the kitchen's catalogue and devices.

use axum::Router;

use crate::Kitchen;

pub fn router() -> Router<Kitchen> {
    Router::new()
}
