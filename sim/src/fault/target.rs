//! Fault targets: which nodes a fault hits, by role and index.
//!
//! Grammar (one selector; a target is one selector or a list of them):
//! `servers` or `servers[*]` (every node of the role), `servers[1]` (one), `instances[0..100]`
//! (half-open range), `instances[random 1%]` (a share, rounded, at least one when the share is
//! above zero), `instances[random 5]` (a count). Random picks are drawn from the fault
//! schedule's own stream, in schedule order, so they are reproducible per seed. Inside
//! partition `groups`, `rest` names every node not listed in another group.
//!
//! With named regions, `eu/instances[random 1]` selects within region `eu`'s block of the
//! role (indices count from the region's first node), and `eu` alone is every node of the
//! region.

use std::collections::BTreeSet;

use rand::RngExt;

use regsim_kernel::{NodeId, SimRng};

/// A role's contiguous block of node ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub first: u32,
    pub count: u32,
    /// Split into this many equal blocks, one per region in order (0: not per region).
    pub regions: u32,
}

impl Role {
    /// Region `r`'s block of the role.
    pub fn block(&self, r: u32) -> Role {
        let per = self.count / self.regions.max(1);
        Role { name: self.name.clone(), first: self.first + r * per, count: per, regions: 0 }
    }
}

/// The roles of a world, in node-id order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Topology {
    pub roles: Vec<Role>,
    /// Region names (empty: one unnamed region).
    pub regions: Vec<String>,
}

impl Topology {
    /// Appends a role of `count` nodes; returns its first id.
    pub fn add_role(&mut self, name: &str, count: u32) -> u32 {
        let first = self.node_count();
        self.roles.push(Role { name: name.to_string(), first, count, regions: 0 });
        first
    }

    /// Appends a role of `per_region` nodes in each of `regions` regions (region-major).
    pub fn add_regional_role(&mut self, name: &str, per_region: u32, regions: u32) -> u32 {
        let first = self.node_count();
        self.roles.push(Role { name: name.to_string(), first, count: per_region * regions, regions });
        first
    }

    /// The region index of node `n`, if it belongs to a per-region role.
    pub fn region_of(&self, n: NodeId) -> Option<u32> {
        let (role, idx) = self.role_of(n)?;
        let per = role.count / role.regions.max(1);
        (role.regions > 0 && per > 0).then(|| idx / per)
    }

    fn unknown(&self, name: &str, selector: &str) -> String {
        let names: Vec<&str> = self.roles.iter().map(|r| r.name.as_str()).collect();
        let regions =
            if self.regions.is_empty() { String::new() } else { format!("; regions: {}", self.regions.join(", ")) };
        format!("unknown role \"{name}\" in \"{selector}\" (roles: {}{regions})", names.join(", "))
    }

    pub fn node_count(&self) -> u32 {
        self.roles.iter().map(|r| r.count).sum()
    }

    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.name == name)
    }

    /// The role of node `n` and its index within the role.
    pub fn role_of(&self, n: NodeId) -> Option<(&Role, u32)> {
        self.roles.iter().find(|r| n.0 >= r.first && n.0 < r.first + r.count).map(|r| (r, n.0 - r.first))
    }

    /// Node `n` as a reader (and a scenario's `target`) names it: `instances[2]`, `servers[0]`;
    /// `n<id>` for an id outside every role.
    pub fn name(&self, n: NodeId) -> String {
        match self.role_of(n) {
            Some((role, i)) => format!("{}[{i}]", role.name),
            None => n.to_string(),
        }
    }

    /// `text` with every node id written as `n<id>` (`NodeId`'s display: traces, details)
    /// replaced by [`Topology::name`]: a word `n` followed only by digits.
    pub fn rename_nodes(&self, text: &str) -> String {
        let b = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        let mut copied = 0;
        while i < b.len() {
            let starts = b[i] == b'n' && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'));
            if starts {
                let mut j = i + 1;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                let ends = j == b.len() || !(b[j].is_ascii_alphanumeric() || b[j] == b'_');
                if j > i + 1
                    && ends
                    && let Ok(id) = text[i + 1..j].parse::<u32>()
                {
                    out.push_str(&text[copied..i]);
                    out.push_str(&self.name(NodeId(id)));
                    copied = j;
                    i = j;
                    continue;
                }
            }
            i += 1;
        }
        out.push_str(&text[copied..]);
        out
    }

    /// Resolves one selector to node ids (in selector order).
    pub fn select(&self, selector: &str, rng: &mut SimRng) -> Result<Vec<NodeId>, String> {
        let s = selector.trim();
        let (name, inner) = match s.find('[') {
            None => (s, "*"),
            Some(open) => {
                let inner = s[open + 1..]
                    .strip_suffix(']')
                    .ok_or_else(|| format!("expected a selector like \"instances[0..10]\", got \"{selector}\""))?;
                (&s[..open], inner.trim())
            }
        };
        let name = name.trim();
        if let Some(r) = self.regions.iter().position(|x| x == name) {
            if inner != "*" {
                return Err(format!("a region selects all its nodes: write \"{name}\" or \"{name}/<role>[...]\""));
            }
            let r = r as u32;
            return Ok(self
                .roles
                .iter()
                .filter(|role| role.regions > 0)
                .flat_map(|role| {
                    let b = role.block(r);
                    (b.first..b.first + b.count).map(NodeId)
                })
                .collect());
        }
        let block;
        let role = match name.split_once('/') {
            Some((region, role_name)) => {
                let r = self.regions.iter().position(|x| x == region.trim());
                let role = self.role(role_name.trim()).filter(|x| x.regions > 0);
                match (r, role) {
                    (Some(r), Some(role)) => {
                        block = Role { name: name.to_string(), ..role.block(r as u32) };
                        &block
                    }
                    _ => return Err(self.unknown(name, selector)),
                }
            }
            None => self.role(name).ok_or_else(|| self.unknown(name, selector))?,
        };
        let ids = |r: std::ops::Range<u32>| r.map(|i| NodeId(role.first + i)).collect::<Vec<_>>();
        let bad_index =
            |i: &str| format!("index {i} is out of range in \"{selector}\": {} has {} nodes", role.name, role.count);
        if inner == "*" {
            return Ok(ids(0..role.count));
        }
        if let Some(spec) = inner.strip_prefix("random") {
            let spec = spec.trim();
            let k = if let Some(pct) = spec.strip_suffix('%') {
                let p: f64 =
                    pct.trim().parse().map_err(|_| format!("expected a percentage like \"1%\" in \"{selector}\""))?;
                if !(0.0..=100.0).contains(&p) {
                    return Err(format!("percentage must be within 0..100 in \"{selector}\""));
                }
                if p > 0.0 && role.count == 0 {
                    return Err(format!(
                        "cannot pick {p}% of no {} in \"{selector}\" (the role has 0 nodes)",
                        role.name
                    ));
                }
                let k = (f64::from(role.count) * p / 100.0).round() as u32;
                if p > 0.0 { k.max(1) } else { 0 }
            } else {
                let k: u32 =
                    spec.parse().map_err(|_| format!("expected \"random 5\" or \"random 1%\" in \"{selector}\""))?;
                if k > role.count {
                    return Err(format!("cannot pick {k} of the {} {} in \"{selector}\"", role.count, role.name));
                }
                k
            };
            return Ok(pick_random(role.count, k, rng).into_iter().map(|i| NodeId(role.first + i)).collect());
        }
        if let Some((a, b)) = inner.split_once("..") {
            let a: u32 = a.trim().parse().map_err(|_| format!("expected a range like \"0..10\" in \"{selector}\""))?;
            let b: u32 = b.trim().parse().map_err(|_| format!("expected a range like \"0..10\" in \"{selector}\""))?;
            if a >= b {
                return Err(format!("empty range in \"{selector}\""));
            }
            if b > role.count {
                return Err(bad_index(&b.to_string()));
            }
            return Ok(ids(a..b));
        }
        let i: u32 = inner
            .parse()
            .map_err(|_| format!("expected an index, a range \"0..10\", \"random 1%\" or \"*\" in \"{selector}\""))?;
        if i >= role.count {
            return Err(bad_index(inner));
        }
        Ok(ids(i..i + 1))
    }

    /// Resolves a list of selectors, removing duplicates but keeping first-seen order.
    pub fn select_all(&self, selectors: &[String], rng: &mut SimRng) -> Result<Vec<NodeId>, String> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for s in selectors {
            for n in self.select(s, rng)? {
                if seen.insert(n) {
                    out.push(n);
                }
            }
        }
        Ok(out)
    }
}

/// `k` distinct indices of `0..n`, sorted (partial Fisher–Yates).
fn pick_random(n: u32, k: u32, rng: &mut SimRng) -> Vec<u32> {
    let mut pool: Vec<u32> = (0..n).collect();
    for i in 0..k as usize {
        let j = rng.random_range(i..pool.len());
        pool.swap(i, j);
    }
    pool.truncate(k as usize);
    pool.sort_unstable();
    pool
}

#[cfg(test)]
mod tests {
    use super::*;
    use regsim_kernel::stream;

    fn topo() -> Topology {
        let mut t = Topology::default();
        t.add_role("servers", 3);
        t.add_role("instances", 1000);
        t.add_role("consumers", 0);
        t
    }

    #[test]
    fn node_ids_read_as_role_and_index() {
        let t = topo();
        assert_eq!(t.name(NodeId(1)), "servers[1]");
        assert_eq!(t.name(NodeId(5)), "instances[2]");
        assert_eq!(t.name(NodeId(5000)), "n5000");
        assert_eq!(
            t.rename_nodes("instance n5 crashed; n0 and n1002, not n, n1x, an3, n3_ or 5n3"),
            "instance instances[2] crashed; servers[0] and instances[999], not n, n1x, an3, n3_ or 5n3"
        );
    }

    #[test]
    fn selectors_resolve() {
        let t = topo();
        let mut rng = stream(1, "faults");
        assert_eq!(t.select("servers[1]", &mut rng), Ok(vec![NodeId(1)]));
        assert_eq!(t.select("servers", &mut rng).map(|v| v.len()), Ok(3));
        assert_eq!(t.select("instances[0..2]", &mut rng), Ok(vec![NodeId(3), NodeId(4)]));
        let r = t.select("instances[random 1%]", &mut rng).expect("valid");
        assert_eq!(r.len(), 10);
        assert!(r.iter().all(|n| n.0 >= 3 && n.0 < 1003));
        assert_eq!(t.select("instances[random 7]", &mut rng).map(|v| v.len()), Ok(7));
    }

    #[test]
    fn bad_selectors_say_why() {
        let t = topo();
        let mut rng = stream(1, "faults");
        for (bad, needle) in [
            ("server[1]", "unknown role"),
            ("servers[3]", "out of range"),
            ("instances[5..5]", "empty range"),
            ("instances[random 2000]", "cannot pick"),
            ("instances[random 150%]", "within 0..100"),
            ("servers[x]", "expected an index"),
            ("servers[1", "expected a selector"),
            ("consumers[random 50%]", "the role has 0 nodes"),
            ("consumers[random 1]", "cannot pick 1 of the 0 consumers"),
        ] {
            let err = t.select(bad, &mut rng).expect_err(bad);
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }
}
