//! Admin pages for the directory.

use axum::Router;

use crate::Directory;

pub fn router() -> Router<Directory> {
    Router::new()
}
