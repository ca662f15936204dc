//! nestbox-worker
