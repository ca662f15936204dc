//! Pieces shared by the API dialects. Dialects never import each other; what two of them
//! need lives here.

pub mod cache;
pub mod cookie;
pub mod drain;
pub mod form;
pub mod pyjson;
pub mod status;
pub mod zipout;
