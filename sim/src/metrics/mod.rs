//! Observations -> statistics. Metrics read the world's log of actor observations and
//! ground-truth fault records (streamed, see `analyzer`); a protocol never grades itself.

pub mod alerts;
pub mod analyzer;
pub mod api;
pub mod consistency;
pub mod convergence;
pub mod detection;
pub mod elections;
pub mod family;
pub mod history;
pub mod load;
pub mod stats;

pub use analyzer::Analyzer;
pub use detection::{Cause, Detection, DetectionParams, FalsePositive};
pub use stats::Summary;
