//! nestbox-core
