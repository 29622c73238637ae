//! Fault injection for Tessera: partitions, delay, loss, restarts and seeded scenarios.
//!
//! Not built yet: this crate holds the place fault injection will take in the layout.
