//! The observation log's entries: what actors observed and what faults did, stamped with the
//! true time and the node.

use crate::fault::FaultRecord;
use crate::id::NodeId;
use crate::time::SimTime;

#[derive(Clone, Debug, PartialEq)]
/// What a log entry says: an actor's observation or a fault record.
pub enum What<O> {
    Actor(O),
    Fault(FaultRecord),
}

/// One timestamped entry of the observation log.
#[derive(Clone, Debug, PartialEq)]
pub struct Record<O> {
    pub time: SimTime,
    pub node: NodeId,
    pub what: What<O>,
}
