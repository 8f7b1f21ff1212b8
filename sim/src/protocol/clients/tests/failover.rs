//! Server failover, one table run by both clients that call the registry: an instance's
//! registration (`POST /nacos/v1/ns/instance`) and a consumer's first list query (`GET
//! .../instance/list`, its view's subscription). Both go through Nacos 1.4.1
//! `NamingProxy.reqApi` (client/.../naming/net/NamingProxy.java): `index =
//! random.nextInt(servers.size())`, then `for (i = 0; i < servers.size(); i++)` it calls
//! `servers.get(index)` and on a `NacosException` (refused connection, timeout, error status)
//! moves to `index = (index + 1) % servers.size()`; after the last server it throws "failed to
//! req API ... after all servers tried". ANCHORS.md, "Client server selection": random start,
//! every server once, round robin. Timeouts are the scenario defaults (`request_timeout`,
//! `query_timeout`: 3 s).

use super::*;
use crate::protocol::nacos::membership::MemberState;
use crate::protocol::{RequestKind, Write, java_hash, registry};
use regsim_kernel::Status;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Server {
    Up,
    /// Crashed: no process listens, the connection is refused at once.
    Refuses,
    /// Cut from the client (both ways): the request times out.
    Silent,
}
use Server::{Refuses, Silent, Up};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Client {
    Instance,
    Consumer,
}

struct Case {
    name: &'static str,
    /// The servers by their place in the client's order (0: the one it starts at).
    servers: [Server; 3],
    /// When (ms after the client starts) each attempt is sent; attempt `k` goes to place `k`.
    sends_ms: &'static [u64],
    /// When the request ends (ms after the start; a proxied registration takes 2 ms more) and
    /// whether it succeeded.
    done_ms: u64,
    ok: bool,
}

const CASES: &[Case] = &[
    Case { name: "every server up", servers: [Up, Up, Up], sends_ms: &[0], done_ms: 2, ok: true },
    Case { name: "first refuses", servers: [Refuses, Up, Up], sends_ms: &[0, 2], done_ms: 4, ok: true },
    Case { name: "first two refuse", servers: [Refuses, Refuses, Up], sends_ms: &[0, 2, 4], done_ms: 6, ok: true },
    Case { name: "first silent", servers: [Silent, Up, Up], sends_ms: &[0, 3000], done_ms: 3002, ok: true },
    Case {
        name: "silent, then refusing",
        servers: [Silent, Refuses, Up],
        sends_ms: &[0, 3000, 3002],
        done_ms: 3004,
        ok: true,
    },
    Case {
        name: "refusing, then silent",
        servers: [Refuses, Silent, Up],
        sends_ms: &[0, 2, 3002],
        done_ms: 3004,
        ok: true,
    },
    Case { name: "only the last one down", servers: [Up, Up, Refuses], sends_ms: &[0], done_ms: 2, ok: true },
    Case { name: "every server refuses", servers: [Refuses; 3], sends_ms: &[0, 2, 4], done_ms: 6, ok: false },
    Case { name: "every server silent", servers: [Silent; 3], sends_ms: &[0, 3000, 6000], done_ms: 9000, ok: false },
];

fn client(c: Client, servers: &ServerList) -> Node {
    match c {
        Client::Instance => instance(servers),
        Client::Consumer => consumer(servers, "random", 0.0, 1),
    }
}

/// The client's registrations or list queries: (time, server, request id).
fn requests(h: &Harness<Node>, me: NodeId) -> Vec<(SimTime, NodeId, u64)> {
    sent_by(h, me)
        .into_iter()
        .filter_map(|(t, to, m)| match m {
            Msg::Registry(registry::Msg::Write { kind: Write::Register, req, .. })
            | Msg::Registry(registry::Msg::Query { req, .. }) => Some((t, to, req)),
            _ => None,
        })
        .collect()
}

/// The server the client's first request goes to with `seed` (the draw is the client's first
/// use of its own random stream, so it does not depend on the faults).
fn first_server(seed: u64, c: Client) -> NodeId {
    let (mut h, servers) = cluster(seed, 3);
    let me = h.add(client(c, &servers));
    h.run_until(SimTime::ZERO);
    requests(&h, me)[0].1
}

fn run(case: &Case, c: Client, seed: u64) {
    let start = first_server(seed, c);
    let (mut h, servers) = cluster(seed, 3);
    let order: Vec<NodeId> = (0..3).map(|k| servers[(start.index() + k) % 3]).collect();
    let me = NodeId(3);
    h.run_until(SimTime::ZERO);
    for (place, s) in case.servers.iter().enumerate() {
        match s {
            Up => {}
            Refuses => h.crash(order[place]),
            Silent => h.cut(me, order[place]),
        }
    }
    // Let the cluster see its dead members (a refused membership report: DOWN at once), so a
    // registration is never proxied to a dead responsible server.
    h.run_for(secs(10));
    let up: Vec<NodeId> = servers.iter().copied().filter(|s| h.status(*s) == Status::Up).collect();
    for s in &up {
        for dead in servers.iter().filter(|d| !up.contains(d)) {
            let down = Obs::Member { peer: *dead, state: MemberState::Down };
            assert!(obs(&h, *s).iter().any(|(_, o)| *o == down), "{}: {s} should see {dead} down", case.name);
        }
    }
    let t0 = h.now();
    assert_eq!(h.add(client(c, &servers)), me);
    h.run_for(secs(12));
    let what = format!("{} ({c:?}, seed {seed}, starting at {start})", case.name);

    let reqs = requests(&h, me);
    let req = reqs[0].2;
    let attempts: Vec<(SimDuration, NodeId)> =
        reqs.iter().filter(|r| r.2 == req).map(|(t, to, _)| (*t - t0, *to)).collect();
    let want: Vec<(SimDuration, NodeId)> = case.sends_ms.iter().zip(&order).map(|(t, s)| (ms(*t), *s)).collect();
    assert_eq!(attempts, want, "{what}: attempts (time, server)");

    // A registration that reaches a server not responsible for the service is proxied to the
    // responsible one (DistroFilter): one more round trip.
    let answering = order[case.sends_ms.len() - 1];
    let hash = java_hash("DEFAULT_GROUP@@demo-service");
    let proxied =
        c == Client::Instance && case.ok && crate::protocol::nacos::distro::responsible(hash, &up) != Some(answering);
    let done = ms(case.done_ms) + if proxied { ms(2) } else { SimDuration::ZERO };
    let kind = if c == Client::Instance { RequestKind::Register } else { RequestKind::Query };
    let outcomes: Vec<(SimDuration, bool)> = obs(&h, me)
        .into_iter()
        .filter_map(|(t, o)| match o {
            Obs::Request { kind: k, ok } if k == kind => Some((t - t0, ok)),
            _ => None,
        })
        .collect();
    assert_eq!(outcomes.first(), Some(&(done, case.ok)), "{what}: outcome (time, ok)");
    // The operation completes (for the linearizability checker) only if it succeeded.
    let completed = obs(&h, me).iter().any(|(_, o)| matches!(o, Obs::OpDone { req: r, .. } if *r == req));
    assert_eq!(completed, case.ok, "{what}: OpDone");
}

/// Every case for both clients, from several seeds (so from different start servers).
#[test]
fn clients_fail_over_to_the_next_server_once_each() {
    let mut starts = std::collections::BTreeSet::new();
    for seed in 1..=4 {
        for c in [Client::Instance, Client::Consumer] {
            starts.insert(first_server(seed, c));
            for case in CASES {
                run(case, c, seed);
            }
        }
    }
    assert!(starts.len() > 1, "the seeds should start at different servers: {starts:?}");
}
