//! The virtual network: per-message latency, loss, duplication and partitions.
//!
//! Datagram semantics: a message is delivered after a latency drawn from the link's
//! distribution, or dropped (loss, partition); with a duplication probability a second copy
//! follows with its own latency. Reordering is a consequence of independent latencies.
//! Protocols retry where the real system does. Link profiles are chosen by the sender's and
//! receiver's *class* (the node's role), so latency, loss and duplication can differ between
//! e.g. servers and instances. All draws come from the network's own random stream, in a fixed
//! order per message, so the network never perturbs any other component's stream.

pub mod latency;
pub mod partition;

pub use latency::{Latency, LatencySpec};
pub use partition::{Partition, Shape};

use rand::RngExt;
use serde::Serialize;

use crate::{NodeId, SimDuration, SimRng};

/// Latency, loss and duplication of one (sender class, receiver class) pair.
#[derive(Clone, Debug)]
pub struct LinkProfile {
    pub latency: Latency,
    pub loss: f64,
    pub duplicate: f64,
}

/// What happens to one sent message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    Dropped(DropCause),
    Once(SimDuration),
    Twice(SimDuration, SimDuration),
}

impl Delivery {
    /// The latency of each copy that arrives (none, one, or two for a duplicate).
    pub fn delays(self) -> impl Iterator<Item = SimDuration> {
        let (a, b) = match self {
            Delivery::Dropped(_) => (None, None),
            Delivery::Once(d) => (Some(d), None),
            Delivery::Twice(d, e) => (Some(d), Some(e)),
        };
        a.into_iter().chain(b)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropCause {
    Loss,
    Partition,
}

/// Message counters for the report.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct NetStats {
    pub sent: u64,
    pub dropped_loss: u64,
    pub dropped_partition: u64,
    pub duplicated: u64,
}

pub struct Network {
    class_of: Vec<u8>,
    classes: usize,
    /// `classes * classes` entries: index into `profiles` for (from class, to class).
    link: Vec<u16>,
    profiles: Vec<LinkProfile>,
    partitions: Vec<(u32, Partition)>,
    rng: SimRng,
    pub stats: NetStats,
}

impl Network {
    /// A network where every pair uses `default`; `class_of[node]` is each node's class.
    pub fn new(default: LinkProfile, class_of: Vec<u8>, rng: SimRng) -> Network {
        let classes = class_of.iter().map(|c| usize::from(*c) + 1).max().unwrap_or(1);
        Network {
            class_of,
            classes,
            link: vec![0; classes * classes],
            profiles: vec![default],
            partitions: Vec::new(),
            rng,
            stats: NetStats::default(),
        }
    }

    /// Uses `profile` for messages from class `from` to class `to`.
    pub fn set_link(&mut self, from: u8, to: u8, profile: LinkProfile) {
        let (f, t) = (usize::from(from), usize::from(to));
        assert!(f < self.classes && t < self.classes, "net: class out of range ({f}, {t})");
        assert!(self.profiles.len() < usize::from(u16::MAX), "net: too many link profiles");
        self.profiles.push(profile);
        self.link[f * self.classes + t] = (self.profiles.len() - 1) as u16;
    }

    pub fn node_count(&self) -> usize {
        self.class_of.len()
    }

    /// Adds partition `id` (replacing an active one with the same id).
    pub fn partition(&mut self, id: u32, p: Partition) {
        self.heal(Some(id));
        self.partitions.push((id, p));
    }

    /// Heals partition `id`, or every partition.
    pub fn heal(&mut self, id: Option<u32>) {
        match id {
            Some(id) => self.partitions.retain(|(pid, _)| *pid != id),
            None => self.partitions.clear(),
        }
    }

    /// The active partitions with their ids.
    pub fn active_partitions(&self) -> impl Iterator<Item = (u32, &Partition)> {
        self.partitions.iter().map(|(id, p)| (*id, p))
    }

    /// Whether a message from `from` can currently reach `to` (ignoring loss).
    #[inline]
    pub fn connected(&self, from: NodeId, to: NodeId) -> bool {
        self.partitions.iter().all(|(_, p)| p.allows(from, to))
    }

    /// Decides the fate of one message.
    #[inline]
    pub fn route(&mut self, from: NodeId, to: NodeId) -> Delivery {
        self.stats.sent += 1;
        if !self.connected(from, to) {
            self.stats.dropped_partition += 1;
            return Delivery::Dropped(DropCause::Partition);
        }
        let class = |n: NodeId| usize::from(self.class_of.get(n.index()).copied().unwrap_or(0));
        let profile = &self.profiles[usize::from(self.link[class(from) * self.classes + class(to)])];
        if profile.loss > 0.0 && self.rng.random::<f64>() < profile.loss {
            self.stats.dropped_loss += 1;
            return Delivery::Dropped(DropCause::Loss);
        }
        let first = profile.latency.sample(&mut self.rng);
        if profile.duplicate > 0.0 && self.rng.random::<f64>() < profile.duplicate {
            self.stats.duplicated += 1;
            let second = profile.latency.sample(&mut self.rng);
            return Delivery::Twice(first, second);
        }
        Delivery::Once(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;

    fn net(loss: f64, duplicate: f64) -> Network {
        let latency = LatencySpec::constant(SimDuration::from_millis(3)).build().expect("valid");
        Network::new(LinkProfile { latency, loss, duplicate }, vec![0, 0, 1, 1], stream(1, "net"))
    }

    #[test]
    fn loss_and_duplication_rates() {
        let mut n = net(0.1, 0.2);
        let mut lost = 0;
        let mut twice = 0;
        let trials = 100_000;
        for _ in 0..trials {
            match n.route(NodeId(0), NodeId(2)) {
                Delivery::Dropped(DropCause::Loss) => lost += 1,
                Delivery::Twice(..) => twice += 1,
                _ => {}
            }
        }
        // Binomial sd: sqrt(0.1*0.9/1e5) ~ 0.001; allow 5 sd.
        assert!((lost as f64 / trials as f64 - 0.1).abs() < 0.005, "loss {lost}");
        assert!((twice as f64 / trials as f64 - 0.9 * 0.2).abs() < 0.006, "dup {twice}");
        assert_eq!(n.stats.sent, trials);
    }

    #[test]
    fn partition_then_heal_restores_delivery() {
        let mut n = net(0.0, 0.0);
        let p = Partition::build(&Shape::Groups(vec![vec![NodeId(0)], vec![NodeId(2)]]), 4, true).expect("valid");
        n.partition(7, p);
        assert_eq!(n.route(NodeId(0), NodeId(2)), Delivery::Dropped(DropCause::Partition));
        assert_eq!(n.route(NodeId(2), NodeId(0)), Delivery::Once(SimDuration::from_millis(3)));
        assert_eq!(n.route(NodeId(1), NodeId(3)), Delivery::Once(SimDuration::from_millis(3)));
        n.heal(Some(7));
        assert_eq!(n.route(NodeId(0), NodeId(2)), Delivery::Once(SimDuration::from_millis(3)));
    }

    #[test]
    fn link_profiles_by_class() {
        let mut n = net(0.0, 0.0);
        let slow = LatencySpec::constant(SimDuration::from_millis(50)).build().expect("valid");
        n.set_link(0, 1, LinkProfile { latency: slow, loss: 0.0, duplicate: 0.0 });
        assert_eq!(n.route(NodeId(0), NodeId(3)), Delivery::Once(SimDuration::from_millis(50)));
        assert_eq!(n.route(NodeId(3), NodeId(0)), Delivery::Once(SimDuration::from_millis(3)));
        assert_eq!(n.route(NodeId(0), NodeId(1)), Delivery::Once(SimDuration::from_millis(3)));
    }
}
