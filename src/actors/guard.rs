//! The propagation guard: the dependency graph, root-cause localisation
//! during cascades, blast radius, and containment decisions.
//!
//! Landed so far: the dependency graph (`graph.rs`). The agent itself
//! (localisation, containment, `faultline.containment`) is issue 5's
//! remaining work; nothing registers a guard agent yet.

pub mod graph;
