//! Fault actions as the kernel carries them out, and the ground truth it records.
//!
//! A fault schedule is built above the kernel (the scenario names targets by role and index);
//! the kernel receives resolved actions: node lists, partitions, clock skews, and *role
//! targets* that can only be resolved when the fault fires (which node is a consensus leader
//! now). The kernel does not know what a leader is: a [`Resolve`] supplied by the layer above
//! picks the node from the running actors.

use crate::id::NodeId;
use crate::net::Partition;
use crate::rng::SimRng;
use crate::time::SimDuration;

/// A resolved fault, carried out by the world at its time.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultAction {
    Crash(Vec<NodeId>),
    Restart(Vec<NodeId>),
    Pause(Vec<NodeId>),
    Resume(Vec<NodeId>),
    Partition {
        id: u32,
        partition: Partition,
    },
    /// Heals partition `id`, or every active partition.
    Heal(Option<u32>),
    Skew {
        nodes: Vec<NodeId>,
        offset_ns: i64,
        drift_ppm: i64,
    },
    /// Crash, pause or isolate the node that `who` names when the fault fires; undo it
    /// (restart, resume, heal) after `undo_after`. No such node: no-op.
    OnRole {
        who: RoleTarget,
        what: RoleFault,
        undo_after: Option<SimDuration>,
    },
}

/// A target resolved when its fault fires, by the [`Resolve`] of the layer that named it (the
/// number means what that layer says, e.g. 0 = "the leader").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RoleTarget(pub u32);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleFault {
    Crash,
    Pause,
    /// Cut off from every other node (a partition with id `.0`).
    Isolate(u32),
}

/// Picks the node a [`RoleTarget`] names among the running nodes (up and started, in id
/// order), drawing from `rng` if the choice is random. `None`: no node fits, the fault is a
/// no-op.
pub trait Resolve<A> {
    fn resolve(&self, who: RoleTarget, running: &[(NodeId, &A)], rng: &mut SimRng) -> Option<NodeId>;
}

/// Ground truth recorded by the fault injector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultRecord {
    Crashed,
    Restarted,
    Paused,
    Resumed,
    /// The node was cut off from some nodes by partition `id`.
    Partitioned(u32),
    /// Partition `id` affecting the node was healed.
    Healed(u32),
    ClockSkewed {
        offset_ns: i64,
        drift_ppm: i64,
    },
    /// Fault action number `.0` of the schedule (`World::fault_actions`) was applied; recorded
    /// once per action (node `NodeId(u32::MAX)`), before its per-node records.
    Applied(u32),
    /// A role target resolved to this node, which partition `id` now isolates from every
    /// other node (recorded before the partition's per-node records).
    Isolated(u32),
}
