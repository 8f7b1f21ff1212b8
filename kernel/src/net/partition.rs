//! Network partitions in named shapes (after Jepsen's nemeses).
//!
//! A partition assigns each affected node a *side* and says which directed side pairs may
//! still talk; nodes it does not mention are unaffected and reach everyone. Shapes, over an
//! ordered list of member nodes:
//! - `isolate`: each member alone on its own side, cut from every other node of the world;
//! - `halves`: the first `n/2` members against the rest (Jepsen's `bisect`);
//! - `majorities-ring`: members on a ring, each connected to the neighbours within distance
//!   `d = ceil((m-1)/2)` for a majority `m = n/2+1`, so each sees a majority (itself
//!   included) and no two see the same one. For n = 3 no symmetric graph does that, so, as
//!   Jepsen's grudge does, node i then hears only from {i, i+1} (a one-way ring);
//! - `bridge`: two halves joined by the middle member, which sees both;
//! - `groups`: explicit groups; nodes talk only within their group.
//!
//! `one_way` (isolate, halves, groups only) drops just the messages *from* side 0 to the other
//! sides; everything else is delivered (a half-open link, e.g. a bad firewall rule).

use crate::NodeId;

/// The shape of a partition, with the member nodes it splits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    Isolate(Vec<NodeId>),
    Halves(Vec<NodeId>),
    MajoritiesRing(Vec<NodeId>),
    Bridge(Vec<NodeId>),
    Groups(Vec<Vec<NodeId>>),
}

const UNAFFECTED: u16 = u16::MAX;

/// A built partition: side per node and the directed side pairs that still connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    side: Vec<u16>,
    sides: usize,
    allow: Vec<bool>,
}

impl Partition {
    /// Builds `shape` over a world of `node_count` nodes. Errors are user errors (bad sizes).
    pub fn build(shape: &Shape, node_count: usize, one_way: bool) -> Result<Partition, String> {
        let groups: Vec<Vec<NodeId>> = match shape {
            Shape::Isolate(ms) => ms.iter().map(|m| vec![*m]).collect(),
            Shape::Halves(ms) => {
                if ms.len() < 2 {
                    return Err(format!("halves needs at least 2 nodes, got {}", ms.len()));
                }
                let (a, b) = ms.split_at(ms.len() / 2);
                vec![a.to_vec(), b.to_vec()]
            }
            Shape::Groups(gs) => gs.clone(),
            Shape::MajoritiesRing(ms) => ms.iter().map(|m| vec![*m]).collect(),
            Shape::Bridge(ms) => {
                if ms.len() < 3 {
                    return Err(format!("bridge needs at least 3 nodes, got {}", ms.len()));
                }
                let b = ms.len() / 2;
                vec![ms[..b].to_vec(), vec![ms[b]], ms[b + 1..].to_vec()]
            }
        };
        let mut side = vec![UNAFFECTED; node_count];
        for (g, members) in groups.iter().enumerate() {
            for m in members {
                let slot = side
                    .get_mut(m.index())
                    .ok_or_else(|| format!("node {m} is outside the world of {node_count} nodes"))?;
                if *slot != UNAFFECTED {
                    return Err(format!("node {m} is in more than one group"));
                }
                *slot = g as u16;
            }
        }
        let isolate_rest = matches!(shape, Shape::Isolate(_));
        let sides = groups.len() + usize::from(isolate_rest);
        if isolate_rest {
            let rest = groups.len() as u16;
            side.iter_mut().filter(|s| **s == UNAFFECTED).for_each(|s| *s = rest);
        }
        if sides > usize::from(u16::MAX) {
            return Err("too many partition groups".into());
        }
        let mut allow = vec![false; sides * sides];
        for s in 0..sides {
            allow[s * sides + s] = true;
        }
        match shape {
            Shape::MajoritiesRing(ms) => {
                if one_way {
                    return Err("one_way applies to isolate, halves and groups only".into());
                }
                ring_links(ms.len(), &mut allow)?;
            }
            Shape::Bridge(_) => {
                if one_way {
                    return Err("one_way applies to isolate, halves and groups only".into());
                }
                let b = 1; // the bridge node's side
                for s in 0..sides {
                    allow[s * sides + b] = true;
                    allow[b * sides + s] = true;
                }
            }
            _ if one_way => {
                // Only side 0 -> others is cut.
                for a in 1..sides {
                    for b in 0..sides {
                        allow[a * sides + b] = true;
                    }
                }
            }
            _ => {}
        }
        Ok(Partition { side, sides, allow })
    }

    /// Whether a message from `from` to `to` gets through this partition.
    #[inline]
    pub fn allows(&self, from: NodeId, to: NodeId) -> bool {
        let (a, b) = (self.side_of(from), self.side_of(to));
        a == UNAFFECTED || b == UNAFFECTED || self.allow[usize::from(a) * self.sides + usize::from(b)]
    }

    /// The side (group index) of `n`, or `None` if the partition does not affect it.
    pub fn group_of(&self, n: NodeId) -> Option<u16> {
        Some(self.side_of(n)).filter(|s| *s != UNAFFECTED)
    }

    #[inline]
    fn side_of(&self, n: NodeId) -> u16 {
        self.side.get(n.index()).copied().unwrap_or(UNAFFECTED)
    }

    /// Whether `n` is cut off from at least one other node it could reach before.
    pub fn affects(&self, n: NodeId) -> bool {
        self.side_of(n) != UNAFFECTED
    }
}

/// Fills the ring links of a majorities-ring over `n` members (member i is side i).
fn ring_links(n: usize, allow: &mut [bool]) -> Result<(), String> {
    if n < 3 {
        return Err(format!("majorities-ring needs at least 3 nodes, got {n}"));
    }
    if n == 3 {
        // One-way ring: i hears from i+1.
        for i in 0..n {
            let j = (i + 1) % n;
            allow[j * n + i] = true;
        }
        return Ok(());
    }
    let majority = n / 2 + 1;
    let d = majority / 2; // = ceil((majority - 1) / 2)
    for i in 0..n {
        for k in 1..=d {
            let j = (i + k) % n;
            allow[i * n + j] = true;
            allow[j * n + i] = true;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn ids(r: std::ops::Range<u32>) -> Vec<NodeId> {
        r.map(NodeId).collect()
    }

    /// The set of members node i hears from (including itself).
    fn hears(p: &Partition, n: u32, i: u32) -> BTreeSet<u32> {
        (0..n).filter(|&j| p.allows(NodeId(j), NodeId(i))).collect()
    }

    #[test]
    fn majorities_ring_each_sees_a_distinct_majority() {
        for n in [3u32, 4, 5, 7] {
            let p = Partition::build(&Shape::MajoritiesRing(ids(0..n)), n as usize, false).expect("valid");
            let views: Vec<_> = (0..n).map(|i| hears(&p, n, i)).collect();
            for (i, v) in views.iter().enumerate() {
                assert!(v.len() > n as usize / 2, "n={n}: node {i} sees {v:?}, not a majority");
                assert!(v.len() < n as usize, "n={n}: node {i} sees everyone");
                assert!(v.contains(&(i as u32)));
            }
            let distinct: BTreeSet<_> = views.iter().collect();
            assert_eq!(distinct.len(), n as usize, "n={n}: views {views:?} not distinct");
        }
        // The exact shape for 5: each node hears its two ring neighbours.
        let p = Partition::build(&Shape::MajoritiesRing(ids(0..5)), 5, false).expect("valid");
        assert_eq!(hears(&p, 5, 0), BTreeSet::from([0, 1, 4]));
    }

    #[test]
    fn halves_and_bridge_groups() {
        for n in [3u32, 4, 5, 7] {
            let p = Partition::build(&Shape::Halves(ids(0..n)), n as usize, false).expect("valid");
            let h = n / 2;
            assert_eq!(hears(&p, n, 0), (0..h).collect::<BTreeSet<_>>(), "halves n={n}");
            assert_eq!(hears(&p, n, n - 1), (h..n).collect::<BTreeSet<_>>(), "halves n={n}");

            let b = Partition::build(&Shape::Bridge(ids(0..n)), n as usize, false).expect("valid");
            let mid = n / 2;
            assert_eq!(hears(&b, n, mid), (0..n).collect::<BTreeSet<_>>(), "bridge n={n} sees all");
            assert_eq!(hears(&b, n, 0), (0..mid + 1).collect::<BTreeSet<_>>(), "bridge n={n} left side");
            assert_eq!(hears(&b, n, n - 1), (mid..n).collect::<BTreeSet<_>>(), "bridge n={n} right side");
        }
    }

    #[test]
    fn isolate_cuts_from_everyone_and_leaves_others_connected() {
        let p = Partition::build(&Shape::Isolate(vec![NodeId(2)]), 6, false).expect("valid");
        assert_eq!(hears(&p, 6, 2), BTreeSet::from([2]));
        assert_eq!(hears(&p, 6, 0), BTreeSet::from([0, 1, 3, 4, 5]));
    }

    #[test]
    fn one_way_drops_one_direction_only() {
        let p = Partition::build(&Shape::Groups(vec![vec![NodeId(0)], vec![NodeId(1)]]), 3, true).expect("valid");
        assert!(!p.allows(NodeId(0), NodeId(1)));
        assert!(p.allows(NodeId(1), NodeId(0)));
        // Node 2 is in no group: unaffected.
        assert!(p.allows(NodeId(0), NodeId(2)) && p.allows(NodeId(2), NodeId(1)));
        assert!(Partition::build(&Shape::Bridge(ids(0..5)), 5, true).is_err());
    }

    #[test]
    fn bad_sizes_are_errors() {
        assert!(Partition::build(&Shape::Halves(ids(0..1)), 3, false).is_err());
        assert!(Partition::build(&Shape::MajoritiesRing(ids(0..2)), 3, false).is_err());
        assert!(Partition::build(&Shape::Groups(vec![ids(0..2), ids(1..3)]), 3, false).is_err());
        assert!(Partition::build(&Shape::Isolate(vec![NodeId(9)]), 3, false).is_err());
    }
}
