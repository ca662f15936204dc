//! nestbox-store
