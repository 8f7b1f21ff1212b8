//! Membership churn for balancer evaluation: a sequence of steps, each a join
//! or a leave of some nodes, applied one after another to a membership of
//! nodes named `"0"`, `"1"`, ... (as strings).
//!
//! Model: `add:A` appends A new nodes at the end of the client's list, named
//! by the next unused numbers (a name is never reused, as with fresh
//! instance ids). `remove:R` removes R nodes chosen uniformly at random
//! without replacement (any instance can crash), and the survivors keep their
//! order, so later indices shift down: the realistic case, and the one that
//! hurts position-based schemes (jump, modn). `remove-last:R` removes the last
//! R nodes, jump hash's favourable case (it is consistent only at the tail).
//! Victims come from a caller's [`SplitMix64`] stream: same seed, same churn.
//!
//! The ideal disruption of a step is the minimum fraction of keys that must
//! move for every node to keep an equal share: R/n for a leave from n nodes
//! (the leavers' keys) and A/(n+A) for a join to n+A nodes (the joiners'
//! shares), i.e. 1/n and 1/(n+1) for one node.

use std::fmt;
use std::str::FromStr;

use super::BalanceError;
use super::hash::SplitMix64;

/// Most churn steps in one evaluation.
pub const MAX_STEPS: usize = 16;

/// One membership change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChurnStep {
    /// `count` random nodes leave.
    Remove { count: u32 },
    /// The last `count` nodes of the list leave.
    RemoveLast { count: u32 },
    /// `count` new nodes join at the end.
    Add { count: u32 },
}

impl ChurnStep {
    /// Ideal moved fraction of keys when this step applies to `before` nodes.
    pub fn ideal_fraction(self, before: usize) -> f64 {
        match self {
            Self::Remove { count } | Self::RemoveLast { count } => f64::from(count) / before as f64,
            Self::Add { count } => f64::from(count) / (before as f64 + f64::from(count)),
        }
    }
}

impl fmt::Display for ChurnStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Remove { count } => write!(f, "remove:{count}"),
            Self::RemoveLast { count } => write!(f, "remove-last:{count}"),
            Self::Add { count } => write!(f, "add:{count}"),
        }
    }
}

impl FromStr for ChurnStep {
    type Err = BalanceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let token = s.trim();
        let bad = |expected: &str| BalanceError::Spec { token: token.to_string(), expected: expected.to_string() };
        let (verb, count) = token.split_once(':').ok_or_else(|| bad("add:N, remove:N or remove-last:N"))?;
        let count = match count.trim().parse::<u32>() {
            Ok(c) if c >= 1 => c,
            _ => return Err(bad("a node count >= 1 after the colon (add:2)")),
        };
        match verb.trim() {
            "add" => Ok(Self::Add { count }),
            "remove" => Ok(Self::Remove { count }),
            "remove-last" => Ok(Self::RemoveLast { count }),
            _ => Err(bad("add:N, remove:N or remove-last:N")),
        }
    }
}

/// Parse `remove:1`, `add:2`, `remove:3,add:1` (steps in order, comma-separated;
/// an empty string is no churn).
pub fn parse_churn(s: &str) -> Result<Vec<ChurnStep>, BalanceError> {
    if s.trim().is_empty() {
        return Ok(Vec::new());
    }
    let steps = s.split(',').map(str::parse).collect::<Result<Vec<ChurnStep>, _>>()?;
    if steps.len() > MAX_STEPS {
        return Err(BalanceError::Spec { token: s.to_string(), expected: format!("at most {MAX_STEPS} churn steps") });
    }
    Ok(steps)
}

/// A membership: node names (`"17"`) and the same numbers as ids, in list order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// Node names, the list a balancer is built from.
    pub names: Vec<String>,
    /// Numeric id of each name (stable across steps).
    pub ids: Vec<u32>,
}

impl Membership {
    /// Membership of these ids, named by their decimal numbers.
    pub fn from_ids(ids: Vec<u32>) -> Self {
        Self { names: ids.iter().map(u32::to_string).collect(), ids }
    }

    /// Nodes in the list.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when there is no node.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// The initial membership of `nodes` nodes followed by one membership per step.
/// Every membership must keep between 1 and `max_nodes` nodes.
pub fn memberships(
    nodes: usize,
    steps: &[ChurnStep],
    max_nodes: usize,
    rng: &mut SplitMix64,
) -> Result<Vec<Membership>, BalanceError> {
    let out_of_range = |step: String, n: u64| BalanceError::Spec {
        token: step,
        expected: format!("a membership of 1..={max_nodes} nodes (this step would leave {n})"),
    };
    if nodes == 0 || nodes > max_nodes {
        return Err(out_of_range("--nodes".to_string(), nodes as u64));
    }
    let mut ids: Vec<u32> = (0..nodes as u32).collect();
    let mut next_id = nodes as u64;
    let mut out = vec![Membership::from_ids(ids.clone())];
    for step in steps {
        match *step {
            ChurnStep::Add { count } => {
                let after = ids.len() as u64 + u64::from(count);
                if after > max_nodes as u64 {
                    return Err(out_of_range(step.to_string(), after));
                }
                ids.extend((next_id..next_id + u64::from(count)).map(|i| i as u32));
                next_id += u64::from(count);
            }
            ChurnStep::Remove { count } | ChurnStep::RemoveLast { count } => {
                let count = count as usize;
                if count >= ids.len() {
                    return Err(out_of_range(step.to_string(), 0));
                }
                if matches!(step, ChurnStep::RemoveLast { .. }) {
                    ids.truncate(ids.len() - count);
                } else {
                    remove_random(&mut ids, count, rng);
                }
            }
        }
        out.push(Membership::from_ids(ids.clone()));
    }
    Ok(out)
}

/// Remove `count` uniformly chosen entries, keeping the order of the rest.
fn remove_random(ids: &mut Vec<u32>, count: usize, rng: &mut SplitMix64) {
    let mut gone = vec![false; ids.len()];
    let mut left = 0;
    while left < count {
        let i = rng.below(ids.len() as u64) as usize;
        if !gone[i] {
            gone[i] = true;
            left += 1;
        }
    }
    let mut keep = gone.iter().map(|g| !g);
    ids.retain(|_| keep.next().unwrap_or(true));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_steps() {
        let steps = parse_churn("remove:3, add:1,remove-last:2").expect("valid");
        assert_eq!(
            steps,
            vec![ChurnStep::Remove { count: 3 }, ChurnStep::Add { count: 1 }, ChurnStep::RemoveLast { count: 2 }]
        );
        let text: Vec<String> = steps.iter().map(ToString::to_string).collect();
        assert_eq!(text.join(","), "remove:3,add:1,remove-last:2");
        assert_eq!(parse_churn(""), Ok(Vec::new()));
        for (bad, token) in [("remove", "remove"), ("add:0", "add:0"), ("drop:1", "drop:1"), ("add:x", "add:x")] {
            match parse_churn(bad) {
                Err(BalanceError::Spec { token: t, .. }) => assert_eq!(t, token),
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert!(parse_churn(&vec!["add:1"; MAX_STEPS + 1].join(",")).is_err());
        assert!((ChurnStep::Add { count: 1 }.ideal_fraction(9) - 0.1).abs() < 1e-15);
        assert!((ChurnStep::Remove { count: 2 }.ideal_fraction(10) - 0.2).abs() < 1e-15);
    }

    #[test]
    fn memberships_follow_the_steps() {
        let steps = parse_churn("remove:3,add:2,remove-last:1").expect("valid");
        let mut rng = SplitMix64::new(1);
        let m = memberships(10, &steps, 100, &mut rng).expect("valid");
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].names[3], "3");
        assert_eq!(m[1].len(), 7);
        // Survivors keep their order, and ids are distinct.
        assert!(m[1].ids.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(&m[2].ids[7..], &[10, 11]);
        assert_eq!(m[3].ids, m[2].ids[..8].to_vec());
        // Same stream, same victims; bounds are enforced.
        assert_eq!(memberships(10, &steps, 100, &mut SplitMix64::new(1)).expect("valid"), m);
        assert!(memberships(3, &parse_churn("remove:3").expect("valid"), 100, &mut rng).is_err());
        assert!(memberships(99, &parse_churn("add:2").expect("valid"), 100, &mut rng).is_err());
        assert!(memberships(0, &[], 100, &mut rng).is_err());
    }
}
