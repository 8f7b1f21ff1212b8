//! The deterministic kernel: virtual time, the event queue, sans-IO actors, per-component
//! random streams, local clocks, the digest and the world that ties them together.
//!
//! It knows nothing about registries: protocols are actors (see `protocol`), the network and
//! the fault actions are the kernel's services (see `net` and `fault`). Single-threaded by
//! design; parallelism comes from running many worlds at once (see DESIGN.md).

pub mod actor;
pub mod clock;
pub mod digest;
mod prefetch;
pub mod queue;
pub mod rng;
pub mod time;
pub mod world;

pub use actor::{Actor, Ctx, Effect, NodeId, TimerId};
pub use clock::LocalClock;
pub use digest::Digest;
pub use queue::EventQueue;
pub use rng::{SimRng, stream};
pub use time::{SimDuration, SimTime, nanos_from_f64, parse_duration};
pub use world::{FaultRecord, Outcome, Record, Status, What, World};
