//! Server membership, after Nacos 1.4's `ServerMemberManager.MemberInfoReportTask`.
//!
//! Every `report_interval` (2 s) a server reports to one peer, round robin over all peers.
//! A failed report (timeout) makes the peer SUSPICIOUS and counts a failure; the
//! `down_after_failures`-th consecutive failure (4th: Nacos' `maxFailAccessCnt` is 3 and the
//! check is `>`) makes it DOWN; a refused connection (process dead, host up) makes it DOWN at
//! once. A successful report, or a report *received* from the peer, makes it UP again.
//! Responsibility (see `distro`) is computed over the members UP or SUSPICIOUS.

use crate::protocol::config::{Invalid, periods};
use crate::protocol::nacos;
use crate::protocol::{NodeCtx, Obs};
use regsim_kernel::{NodeId, SimDuration};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    Up,
    Suspicious,
    Down,
}

/// `[registry.membership]`: server membership reports (Nacos `MemberInfoReportTask`: every
/// 2 s, 2.5 s read timeout, DOWN at the 4th consecutive failure).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MembershipConfig {
    pub report_interval: SimDuration,
    pub report_timeout: SimDuration,
    pub down_after_failures: u32,
}

impl MembershipConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        periods(&[("report_interval", self.report_interval), ("report_timeout", self.report_timeout)])?;
        if self.down_after_failures == 0 {
            return Err(("down_after_failures".into(), "expected at least 1".into()));
        }
        Ok(())
    }
}

impl Default for MembershipConfig {
    fn default() -> Self {
        MembershipConfig {
            report_interval: SimDuration::from_secs(2),
            // The report rides `NacosAsyncRestTemplate` (`DefaultHttpClientFactory`: connect
            // timeout `nacos.http.timeout` 5 s, read timeout half of it); the connection is
            // pooled, so the read timeout is the one that applies.
            report_timeout: SimDuration::from_millis(2_500),
            down_after_failures: 4,
        }
    }
}

#[derive(Clone, Debug)]
struct Peer {
    id: NodeId,
    state: MemberState,
    failures: u32,
    /// The report in flight to this peer, if any.
    pending: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct Membership {
    config: MembershipConfig,
    me: NodeId,
    peers: Vec<Peer>,
    cursor: usize,
    next_req: u64,
}

impl Membership {
    /// `servers` is the whole cluster (sorted); `me` is this server.
    pub fn new(config: MembershipConfig, me: NodeId, servers: &[NodeId]) -> Self {
        let peers = servers
            .iter()
            .filter(|s| **s != me)
            .map(|id| Peer { id: *id, state: MemberState::Up, failures: 0, pending: None })
            .collect();
        Membership { config, me, peers, cursor: 0, next_req: 0 }
    }

    /// The servers this one counts for responsibility: itself and peers UP or SUSPICIOUS,
    /// sorted (Nacos sorts by address; ids are laid out in address order).
    pub fn healthy_servers(&self) -> Vec<NodeId> {
        let mut v: Vec<NodeId> =
            self.peers.iter().filter(|p| p.state != MemberState::Down).map(|p| p.id).chain([self.me]).collect();
        v.sort();
        v
    }

    pub fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.peers.iter().map(|p| p.id)
    }

    pub fn on_start(&mut self, ctx: &mut NodeCtx<'_>) {
        if !self.peers.is_empty() {
            ctx.set_timer(self.config.report_interval, nacos::Timer::Report);
        }
    }

    /// After a crash the member list comes back from the cluster configuration, all UP.
    pub fn reset(&mut self) {
        for p in &mut self.peers {
            *p = Peer { id: p.id, state: MemberState::Up, failures: 0, pending: None };
        }
        self.cursor = 0;
    }

    /// The membership's part of a server's messages (a report, answered; a report's answer).
    /// `None`: not a membership message; `Some(changed)`: handled, and whether a peer changed.
    pub fn on_message(&mut self, ctx: &mut NodeCtx<'_>, from: NodeId, msg: &nacos::Msg) -> Option<bool> {
        Some(match *msg {
            nacos::Msg::Report { req } => {
                let changed = self.on_report_received(ctx, from);
                ctx.send(from, nacos::Msg::ReportOk { req });
                changed
            }
            nacos::Msg::ReportOk { req } => self.on_report_ok(ctx, from, req),
            _ => return None,
        })
    }

    /// The membership's timers, as [`Self::on_message`].
    pub fn on_timer(&mut self, ctx: &mut NodeCtx<'_>, timer: &nacos::Timer) -> Option<bool> {
        Some(match *timer {
            nacos::Timer::Report => {
                self.on_report_timer(ctx);
                false
            }
            nacos::Timer::ReportTimeout { req } => self.on_report_timeout(ctx, req),
            _ => return None,
        })
    }

    /// The report timer: report to the next peer.
    pub fn on_report_timer(&mut self, ctx: &mut NodeCtx<'_>) {
        if self.peers.is_empty() {
            return;
        }
        self.cursor = (self.cursor + 1) % self.peers.len();
        let req = self.next_req;
        self.next_req += 1;
        let peer = &mut self.peers[self.cursor];
        peer.pending = Some(req);
        ctx.send(peer.id, nacos::Msg::Report { req });
        ctx.set_timer(self.config.report_timeout, nacos::Timer::ReportTimeout { req });
        ctx.set_timer(self.config.report_interval, nacos::Timer::Report);
    }

    /// A report answered: the peer is UP. Returns true if its state changed.
    pub fn on_report_ok(&mut self, ctx: &mut NodeCtx<'_>, from: NodeId, req: u64) -> bool {
        match self.peers.iter().position(|p| p.id == from && p.pending == Some(req)) {
            Some(i) => {
                self.peers[i].pending = None;
                self.set(ctx, i, MemberState::Up)
            }
            None => false,
        }
    }

    /// A report received from `from` proves it is alive. Returns true if its state changed.
    pub fn on_report_received(&mut self, ctx: &mut NodeCtx<'_>, from: NodeId) -> bool {
        match self.peers.iter().position(|p| p.id == from) {
            Some(i) => self.set(ctx, i, MemberState::Up),
            None => false,
        }
    }

    /// A report timed out. Returns true if the peer's state changed.
    pub fn on_report_timeout(&mut self, ctx: &mut NodeCtx<'_>, req: u64) -> bool {
        let Some(i) = self.peers.iter().position(|p| p.pending == Some(req)) else {
            return false;
        };
        self.peers[i].pending = None;
        self.fail(ctx, i, false)
    }

    /// A message to `to` was refused (no process): DOWN at once if `to` is a peer.
    pub fn on_refused(&mut self, ctx: &mut NodeCtx<'_>, to: NodeId) -> bool {
        match self.peers.iter().position(|p| p.id == to) {
            Some(i) => {
                self.peers[i].pending = None;
                self.fail(ctx, i, true)
            }
            None => false,
        }
    }

    fn fail(&mut self, ctx: &mut NodeCtx<'_>, i: usize, refused: bool) -> bool {
        let p = &mut self.peers[i];
        p.failures += 1;
        let next = if refused || p.failures >= self.config.down_after_failures {
            MemberState::Down
        } else {
            MemberState::Suspicious
        };
        if p.state == MemberState::Down {
            return false;
        }
        self.set(ctx, i, next)
    }

    fn set(&mut self, ctx: &mut NodeCtx<'_>, i: usize, state: MemberState) -> bool {
        let p = &mut self.peers[i];
        if state == MemberState::Up {
            p.failures = 0;
        }
        if p.state == state {
            return false;
        }
        let responsibility_changed = (p.state == MemberState::Down) != (state == MemberState::Down);
        p.state = state;
        ctx.observe(Obs::Member { peer: p.id, state });
        responsibility_changed
    }
}
