//! Observations -> statistics. Metrics read the world's log of actor observations and
//! ground-truth fault records; a protocol never grades itself.

pub mod detection;
pub mod stats;

pub use detection::{Cause, Detection, DetectionParams, FalsePositive, analyze};
pub use stats::Summary;
