//! nestbox-api
