//! Ground truth reconstructed from fault records, as they stream in: which nodes were down,
//! paused, cut off or skewed when, and which partitions were active. Intervals still open are
//! treated as lasting forever, which is exact for questions about the past (cause
//! attribution) and closed at the end of the run for questions about the future (invariants).

use std::collections::BTreeMap;

use crate::fault::FaultAction;
use regsim_kernel::net::Partition;
use regsim_kernel::{FaultRecord, NodeId, SimDuration, SimTime};

type Intervals = BTreeMap<NodeId, Vec<(SimTime, SimTime)>>;

#[derive(Default)]
pub struct History {
    paused: Intervals,
    cut: Intervals,
    down: Intervals,
    skewed: BTreeMap<NodeId, Vec<SimTime>>,
    /// Per node: crashed (or not yet restarted) / paused right now.
    pub is_down: BTreeMap<NodeId, bool>,
    pub is_paused: BTreeMap<NodeId, bool>,
    /// Active partitions by id.
    pub active: BTreeMap<u32, Partition>,
    /// (start, end) of every partition, for plots and convergence.
    pub partition_spans: Vec<(SimTime, SimTime)>,
    open_partition: BTreeMap<u32, usize>,
    actions: Vec<FaultAction>,
    /// Nodes in the world (to build partitions resolved at run time).
    nodes: usize,
    /// See [`History::with_stream_tail`].
    stream_tail: Option<(SimDuration, SimDuration)>,
}

fn open(map: &mut Intervals, n: NodeId, t: SimTime) {
    map.entry(n).or_default().push((t, SimTime::MAX));
}

fn close(map: &mut Intervals, n: NodeId, t: SimTime) {
    if let Some(last) = map.get_mut(&n).and_then(|v| v.last_mut())
        && last.1 == SimTime::MAX
    {
        last.1 = t;
    }
}

impl History {
    pub fn new(actions: Vec<FaultAction>, nodes: usize) -> Self {
        History { actions, nodes, ..History::default() }
    }

    /// With TCP's `(rto_min, rto_max)`: a node's cut-off interval, for cause attribution and
    /// "was a server faulted" questions, lasts past the heal by what a segment cut at the
    /// partition's start may still wait for its next retransmission: the RTO then, at most
    /// the partition's length plus `rto_min`, capped at `rto_max` (the RTO doubles from
    /// `rto_min`). Such a late segment (a proxied beat, a Distro sync) lands after the heal
    /// and acts then, as the real server would act on it.
    pub fn with_stream_tail(mut self, tail: Option<(SimDuration, SimDuration)>) -> Self {
        self.stream_tail = tail;
        self
    }

    fn activate(&mut self, t: SimTime, id: u32, partition: Partition) {
        self.heal(t, Some(id));
        self.active.insert(id, partition);
        self.partition_spans.push((t, SimTime::MAX));
        self.open_partition.insert(id, self.partition_spans.len() - 1);
    }

    pub fn ingest(&mut self, t: SimTime, node: NodeId, f: FaultRecord) {
        match f {
            FaultRecord::Paused => {
                open(&mut self.paused, node, t);
                self.is_paused.insert(node, true);
            }
            FaultRecord::Resumed => {
                close(&mut self.paused, node, t);
                self.is_paused.insert(node, false);
            }
            FaultRecord::Crashed => {
                // A crash ends a pause: the world drops what the node deferred, and a later
                // resume of the crashed node does nothing (and records nothing).
                if self.is_paused.insert(node, false) == Some(true) {
                    close(&mut self.paused, node, t);
                }
                open(&mut self.down, node, t);
                self.is_down.insert(node, true);
            }
            FaultRecord::Restarted => {
                close(&mut self.down, node, t);
                self.is_down.insert(node, false);
            }
            FaultRecord::Partitioned(_) => open(&mut self.cut, node, t),
            FaultRecord::Healed(_) => {
                let start = self.cut.get(&node).and_then(|v| v.last()).map_or(t, |x| x.0);
                let tail = self.stream_tail.map_or(SimDuration::ZERO, |(min, max)| (t - start + min).min(max));
                close(&mut self.cut, node, t + tail);
            }
            FaultRecord::ClockSkewed { .. } => self.skewed.entry(node).or_default().push(t),
            FaultRecord::Isolated(id) => {
                if let Ok(p) = Partition::build(&regsim_kernel::net::Shape::Isolate(vec![node]), self.nodes, false) {
                    self.activate(t, id, p);
                }
            }
            FaultRecord::Applied(idx) => match self.actions.get(idx as usize).cloned() {
                Some(FaultAction::Partition { id, partition }) => self.activate(t, id, partition),
                Some(FaultAction::Heal(id)) => self.heal(t, id),
                _ => {}
            },
        }
    }

    fn heal(&mut self, t: SimTime, id: Option<u32>) {
        let ids: Vec<u32> = self.active.keys().copied().filter(|k| id.is_none_or(|x| x == *k)).collect();
        for k in ids {
            self.active.remove(&k);
            if let Some(i) = self.open_partition.remove(&k) {
                self.partition_spans[i].1 = t;
            }
        }
    }

    /// Closes every open interval at `end`.
    pub fn finish(&mut self, end: SimTime) {
        for map in [&mut self.paused, &mut self.cut, &mut self.down] {
            for v in map.values_mut() {
                v.iter_mut().filter(|x| x.1 == SimTime::MAX).for_each(|x| x.1 = end);
            }
        }
        self.partition_spans.iter_mut().filter(|x| x.1 == SimTime::MAX).for_each(|x| x.1 = end);
    }

    /// Whether `a` and `b` can exchange messages both ways under the active partitions.
    pub fn connected(&self, a: NodeId, b: NodeId) -> bool {
        self.active.values().all(|p| p.allows(a, b) && p.allows(b, a))
    }

    /// Whether `n` is running (not crashed, not paused) right now.
    pub fn running(&self, n: NodeId) -> bool {
        !self.is_down.get(&n).copied().unwrap_or(false) && !self.is_paused.get(&n).copied().unwrap_or(false)
    }

    fn overlaps(map: &Intervals, n: NodeId, from: SimTime, to: SimTime) -> bool {
        map.get(&n).is_some_and(|v| v.iter().any(|(a, b)| *a <= to && *b >= from))
    }

    pub fn was_cut(&self, n: NodeId, from: SimTime, to: SimTime) -> bool {
        Self::overlaps(&self.cut, n, from, to)
    }
    pub fn was_paused(&self, n: NodeId, from: SimTime, to: SimTime) -> bool {
        Self::overlaps(&self.paused, n, from, to)
    }
    pub fn was_down(&self, n: NodeId, from: SimTime, to: SimTime) -> bool {
        Self::overlaps(&self.down, n, from, to)
    }
    pub fn skewed_in(&self, n: NodeId, from: SimTime, to: SimTime) -> bool {
        self.skewed.get(&n).is_some_and(|v| v.iter().any(|x| *x >= from && *x <= to))
    }
    pub fn ever_skewed_before(&self, n: NodeId, to: SimTime) -> bool {
        self.skewed.get(&n).is_some_and(|v| v.iter().any(|x| *x <= to))
    }
}
