//! The virtual network: per-packet latency, loss, duplication and partitions, and the
//! transports messages take over them ([`wire`]).
//!
//! Datagram semantics: a message is delivered after a latency drawn from the link's
//! distribution, or dropped (loss, partition); with a duplication probability a second copy
//! follows with its own latency. Reordering is a consequence of independent latencies.
//! Protocols retry where the real system does. A stream channel's message is retransmitted
//! as TCP does instead ([`Network::stream_step`]). Link profiles are chosen by the sender's and
//! receiver's *class* (the node's role), so latency, loss and duplication can differ between
//! e.g. servers and instances. All draws come from the network's own random stream, in a fixed
//! order per message, so the network never perturbs any other component's stream.

pub mod latency;
pub mod partition;
pub mod wire;

pub use latency::{DistKind, Latency, LatencySpec};
pub use partition::{Partition, Shape};
pub use wire::{Attempt, Channel, StreamStep, TcpSpec, Wire, WireKind};

use rand::RngExt;
use serde::Serialize;

use crate::{NodeId, SimDuration, SimRng, SimTime};

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

/// Message and packet counters for the report. `sent` counts messages; the drops count
/// packets (a stream message's lost or cut-off packet is sent again: `retransmitted`).
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct NetStats {
    pub sent: u64,
    pub dropped_loss: u64,
    pub dropped_partition: u64,
    pub duplicated: u64,
    /// Stream packets (SYNs and data) sent again after a loss or a partition.
    pub retransmitted: u64,
    /// Stream messages whose connection could not be opened before the connect timeout.
    pub connect_failed: u64,
    /// Stream messages lost after the last retransmission (the connection was given up).
    pub gave_up: u64,
}

pub struct Network {
    class_of: Vec<u8>,
    classes: usize,
    /// `classes * classes` entries: index into `profiles` for (from class, to class).
    link: Vec<u16>,
    profiles: Vec<LinkProfile>,
    partitions: Vec<(u32, Partition)>,
    /// The wire of each channel (channels past the end are datagrams).
    wires: Vec<Wire>,
    /// Whether no link profile loses packets (the streams' fast path).
    lossless: bool,
    tcp: TcpSpec,
    rng: SimRng,
    pub stats: NetStats,
}

impl Network {
    /// A network where every pair uses `default`; `class_of[node]` is each node's class.
    pub fn new(default: LinkProfile, class_of: Vec<u8>, rng: SimRng) -> Network {
        let classes = class_of.iter().map(|c| usize::from(*c) + 1).max().unwrap_or(1);
        let lossless = default.loss == 0.0;
        Network {
            class_of,
            classes,
            link: vec![0; classes * classes],
            profiles: vec![default],
            partitions: Vec::new(),
            wires: Vec::new(),
            lossless,
            tcp: TcpSpec::default(),
            rng,
            stats: NetStats::default(),
        }
    }

    /// Carries channel `channel` on `wire` (every channel is a datagram one until set).
    pub fn set_wire(&mut self, channel: u8, wire: Wire) {
        let c = usize::from(channel);
        if self.wires.len() <= c {
            self.wires.resize(c + 1, Wire::Datagram);
        }
        self.wires[c] = wire;
    }

    /// Uses `tcp` for every stream.
    pub fn set_tcp(&mut self, tcp: TcpSpec) {
        self.tcp = tcp;
    }

    /// The wire of `channel`.
    #[inline]
    pub fn wire(&self, channel: u8) -> Wire {
        self.wires.get(usize::from(channel)).copied().unwrap_or(Wire::Datagram)
    }

    /// Uses `profile` for messages from class `from` to class `to`.
    pub fn set_link(&mut self, from: u8, to: u8, profile: LinkProfile) {
        let (f, t) = (usize::from(from), usize::from(to));
        assert!(f < self.classes && t < self.classes, "net: class out of range ({f}, {t})");
        assert!(self.profiles.len() < usize::from(u16::MAX), "net: too many link profiles");
        self.lossless &= profile.loss == 0.0;
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

    /// The index in `profiles` of the link from `from` to `to`.
    #[inline]
    fn profile(&self, from: NodeId, to: NodeId) -> usize {
        let class = |n: NodeId| usize::from(self.class_of.get(n.index()).copied().unwrap_or(0));
        usize::from(self.link[class(from) * self.classes + class(to)])
    }

    /// Whether one packet from `from` to `to` gets through now (not cut off, not lost): the
    /// link's profile if it does, why not otherwise (the drop counted). Datagrams and stream
    /// segments alike.
    #[inline]
    fn packet(&mut self, from: NodeId, to: NodeId) -> Result<usize, DropCause> {
        if !self.connected(from, to) {
            self.stats.dropped_partition += 1;
            return Err(DropCause::Partition);
        }
        let p = self.profile(from, to);
        let loss = self.profiles[p].loss;
        if loss > 0.0 && self.rng.random::<f64>() < loss {
            self.stats.dropped_loss += 1;
            return Err(DropCause::Loss);
        }
        Ok(p)
    }

    /// One latency draw from `from` to `to`.
    #[inline]
    fn latency(&mut self, from: NodeId, to: NodeId) -> SimDuration {
        let p = self.profile(from, to);
        self.profiles[p].latency.sample(&mut self.rng)
    }

    /// One transmission of a stream message from `from` to `to` at `now`, in state `a` (see
    /// [`wire`]): it arrives, is sent again later, fails to connect, or is given up. Counts a
    /// new message when `a` is its first transmission.
    #[inline]
    pub fn stream_step(&mut self, now: SimTime, from: NodeId, to: NodeId, wire: Wire, a: Attempt) -> StreamStep {
        let Wire::Stream { connect_timeout } = wire else { unreachable!("stream_step on a datagram channel") };
        let first = a.retries == 0 && a.sent == now;
        if first && let Some(d) = self.stream_fast(from, to, a.connecting) {
            return StreamStep::Arrives(d);
        }
        if first {
            self.stats.sent += 1;
        }
        let mut handshake = SimDuration::ZERO;
        let mut a = a;
        if a.connecting {
            let deadline = a.sent + connect_timeout.unwrap_or(SimDuration::MAX);
            if self.packet(from, to).is_ok() && self.packet(to, from).is_ok() {
                // One draw for the round trip (SYN and SYN-ACK alike): a handshake is on every
                // registry request, and a second draw costs more than the model gains.
                handshake = self.latency(from, to).saturating_mul(2);
                a = Attempt { connecting: false, retries: 0, ..a };
            } else {
                let next = now + wire::backoff(self.tcp.syn_rto, a.retries, SimDuration::MAX);
                if a.retries >= self.tcp.syn_retries || next >= deadline {
                    self.stats.connect_failed += 1;
                    return StreamStep::ConnectFailed(deadline.max(now));
                }
                self.stats.retransmitted += 1;
                return StreamStep::Retry(next - now, Attempt { retries: a.retries + 1, ..a });
            }
        }
        // The data segment leaves when the handshake completes; the path is judged now (a
        // handshake is one round trip: a partition starting within it is not seen).
        if self.packet(from, to).is_ok() {
            return StreamStep::Arrives(handshake + self.latency(from, to));
        }
        if a.retries >= self.tcp.retries {
            self.stats.gave_up += 1;
            return StreamStep::GaveUp;
        }
        self.stats.retransmitted += 1;
        let rto = wire::backoff(self.tcp.rto_min, a.retries, self.tcp.rto_max);
        StreamStep::Retry(handshake + rto, Attempt { connecting: false, retries: a.retries + 1, ..a })
    }

    /// The first transmission of a stream message when nothing can be lost (no partition, no
    /// link loses packets): its delay, drawn as [`Network::stream_step`] draws it (the
    /// handshake's latency, then the data's); `None` otherwise. Counts the message.
    #[inline(always)]
    pub fn stream_fast(&mut self, from: NodeId, to: NodeId, connecting: bool) -> Option<SimDuration> {
        if !(self.partitions.is_empty() && self.lossless) {
            return None;
        }
        self.stats.sent += 1;
        let latency = &self.profiles[self.profile(from, to)].latency;
        let handshake = if connecting { latency.sample(&mut self.rng).saturating_mul(2) } else { SimDuration::ZERO };
        Some(handshake + latency.sample(&mut self.rng))
    }

    /// A stream's reset (the answer of a host where no process listens) from `from` to `to`:
    /// its latency, or `None` when a partition keeps it away. Not lost: TCP resends the data
    /// and each copy draws another reset. Counted as a message.
    pub fn reset(&mut self, from: NodeId, to: NodeId) -> Option<SimDuration> {
        self.stats.sent += 1;
        if !self.connected(from, to) {
            self.stats.dropped_partition += 1;
            return None;
        }
        Some(self.latency(from, to))
    }

    /// Decides the fate of one datagram.
    #[inline]
    pub fn route(&mut self, from: NodeId, to: NodeId) -> Delivery {
        self.stats.sent += 1;
        let profile = match self.packet(from, to) {
            Ok(p) => &self.profiles[p],
            Err(cause) => return Delivery::Dropped(cause),
        };
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

    /// The lossless fast path of `stream_step` draws exactly what the general path draws: the
    /// same steps with and without a partition that leaves the pair alone.
    #[test]
    fn the_stream_fast_path_matches_the_general_path() {
        let uniform = || LatencySpec::uniform(SimDuration::from_millis(1), SimDuration::from_millis(9)).build();
        let make = || {
            let latency = uniform().expect("valid");
            Network::new(LinkProfile { latency, loss: 0.0, duplicate: 0.0 }, vec![0, 0, 1, 1], stream(3, "net"))
        };
        let (mut fast, mut general) = (make(), make());
        let p = Partition::build(&Shape::Isolate(vec![NodeId(3)]), 4, false).expect("valid");
        general.partition(1, p);
        for connect in [None, Some(SimDuration::from_secs(3))] {
            let wire = Wire::Stream { connect_timeout: connect };
            for k in 0..200u64 {
                let now = SimTime(k * 1_000);
                let a = Attempt::first(now, connect);
                let (x, y) = (
                    fast.stream_step(now, NodeId(0), NodeId(1), wire, a),
                    general.stream_step(now, NodeId(0), NodeId(1), wire, a),
                );
                assert_eq!(x, y, "message {k}, connect {connect:?}");
            }
        }
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
