//! The router agent: traffic weights per service across instances, versions
//! and regions, outlier ejection with Envoy's semantics, and locality
//! failover by Envoy's priority levels. It decides; the client data plane
//! (`faultline::client`) enforces.

pub mod config;
pub mod core;
pub mod outlier;
pub mod table;

pub use self::config::RouterConfig;
pub use self::core::RouterAgent;
