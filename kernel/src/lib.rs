//! regsim's deterministic kernel: virtual time, the event queue, sans-IO actors, per-component
//! random streams, local clocks, the digest, node hosts, the network model, the fault
//! machinery and the world that ties them together.
//!
//! It knows no registry words: protocols are [`Actor`]s built above it (the `regsim` crate),
//! and what a role target such as "the leader" means is resolved by a [`fault::Resolve`] the
//! layer above supplies. Being its own crate, the compiler keeps the direction: nothing here
//! can import a protocol. Single-threaded by design; parallelism comes from running many
//! worlds at once (see DESIGN.md).
//!
//! Modules, bottom up: `time`, `rng`, `clock`, `digest`, `queue` (the calendar queue),
//! `actor` (the sans-IO interface), `net` (latency, loss, partitions), `fault` (resolved
//! actions and ground-truth records), `host` (what every runtime does around an actor:
//! status, incarnations, timers, pause, crash, the digest and the log), `world` (the core
//! runtime: hosts on the queue and the network model) and `harness` (a few actors on a
//! network a test drives message by message, for protocol table tests).

pub mod actor;
pub mod clock;
pub mod digest;
pub mod fault;
pub mod harness;
pub mod host;
pub mod id;
pub mod log;
pub mod net;
mod prefetch;
pub mod queue;
pub mod rng;
pub mod time;
pub mod world;

pub use actor::{Actor, Ctx, Effect, NodeId, Record, TimerId, What};
pub use clock::LocalClock;
pub use digest::{Digest, Tagged};
pub use fault::{FaultAction, FaultRecord, Resolve, RoleFault, RoleTarget};
pub use host::{Hosts, Status, Transport, Wake};
pub use queue::EventQueue;
pub use rng::{SimRng, stream};
pub use time::{SimDuration, SimTime, nanos_from_f64, parse_duration};
pub use world::{Outcome, World};
