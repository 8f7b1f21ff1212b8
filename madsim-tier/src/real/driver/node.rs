//! One node's task and its transport: binding the node's UDP socket, the incarnation's loop
//! (due timers, then a datagram, an inbox entry or the next deadline), receiving frames, and
//! the `Transport` its handlers send through: the core's network model decides each
//! message's fate, latency is held (when at least the timer resolution), a datagram to a node
//! with no socket comes back as a refusal.

use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::rc::Rc;

use regsim::protocol::{Msg, Node};
use regsim_kernel::net::{Delivery, Network};
use regsim_kernel::{Hosts, NodeId, SimTime, Transport, Wake};
use tokio::net::UdpSocket;
use tokio::sync::mpsc::unbounded_channel;
use tokio::time::{Instant, sleep_until};

use super::super::TIMER_RESOLUTION;
use super::{Clock, Shared, Side, Timer, with};
use crate::codec::{self, MAX_DATAGRAM};
use crate::timers::Wakes;

/// Datagrams a node handles per wake-up before it looks at its timers again.
const DRAIN_MAX: usize = 64;

thread_local! {
    /// One receive buffer for every node of the thread (filled and read between awaits).
    static RECV: RefCell<Vec<u8>> = RefCell::new(vec![0; MAX_DATAGRAM + 1]);
}

/// Binds node `i`'s socket on 127.0.0.1: its last port if it had one and it is free, else an
/// ephemeral port. Two handles on it: tokio's, to wait for datagrams, and a plain one to send
/// with (tokio's `try_send_to` reports `WouldBlock` until its reactor has seen the new socket
/// writable once, which would lose every node's first message).
fn bind(last_port: u16) -> std::io::Result<(UdpSocket, std::net::UdpSocket)> {
    let try_bind = |port| {
        let s = std::net::UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))?;
        s.set_nonblocking(true)?;
        let sender = s.try_clone()?;
        Ok((UdpSocket::from_std(s)?, sender))
    };
    match last_port {
        0 => try_bind(0),
        p => try_bind(p).or_else(|_| try_bind(0)),
    }
}

/// One incarnation of node `i` (a restart runs a new one). Returns only if it cannot bind.
pub(super) async fn node_main(i: u32) {
    let (k, me) = (i as usize, NodeId(i));
    let (first, start_at, port, c) = with(|g| {
        let m = &g.side[k];
        (g.hosts.incarnation(me) == 0, m.start_at, m.port, g.clock)
    });
    if first && start_at.0 > c.now_ns() {
        sleep_until(c.instant(start_at.0)).await;
    }
    let (socket, sender) = match bind(port) {
        Ok((s, t)) => (Rc::new(s), Rc::new(t)),
        Err(e) => {
            with(|g| g.fatal = Some(format!("node n{i} cannot bind a UDP socket on 127.0.0.1: {e}")));
            return;
        }
    };
    let (tx, mut rx) = unbounded_channel::<Wake<Msg, Timer>>();
    let mut wakes = Wakes::default();
    with(|g| {
        let m = &mut g.side[k];
        m.addr = socket.local_addr().ok();
        m.port = m.addr.map_or(0, |a| a.port());
        m.inbox = Some(tx);
        let incarnation = g.hosts.incarnation(me);
        g.run(me, &sender, &mut wakes, |h, now, io| h.start(now, me, incarnation, io));
    });
    loop {
        let now = c.now_ns();
        while let Some((at, what)) = wakes.pop_due(now) {
            with(|g| {
                g.timer_late_max = g.timer_late_max.max(now - at);
                g.run(me, &sender, &mut wakes, |h, now, io| h.wake(now, me, what, io));
            });
        }
        let deadline = wakes.next_deadline().unwrap_or(u64::MAX);
        tokio::select! {
            biased;
            Some(what) = rx.recv() => match what {
                Wake::Timer { .. } => wakes.insert(c.now_ns(), what),
                _ => with(|g| g.run(me, &sender, &mut wakes, |h, now, io| h.wake(now, me, what, io))),
            },
            ready = socket.readable() => {
                if ready.is_ok() {
                    receive(me, &socket, &sender, &mut wakes);
                }
            }
            _ = sleep_until(c.instant(deadline)) => {}
        }
    }
}

/// Handles up to [`DRAIN_MAX`] datagrams waiting on `socket`.
fn receive(me: NodeId, socket: &UdpSocket, sender: &Rc<std::net::UdpSocket>, wakes: &mut Wakes) {
    for _ in 0..DRAIN_MAX {
        let got = RECV.with(|b| {
            let mut buf = b.borrow_mut();
            match socket.try_recv_from(&mut buf) {
                Ok((n, _)) => Some(Ok(with(|g| codec::decode(g.nonce, &buf[..n])))),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
                Err(e) => Some(Err(e)),
            }
        });
        match got {
            None => return,
            Some(Ok(Ok((from, msg)))) if with(|g| from.index() < g.hosts.len()) => {
                with(|g| g.run(me, sender, wakes, |h, now, io| h.deliver(now, from, me, msg, io)));
            }
            Some(Ok(_)) => with(|g| g.foreign += 1),
            // e.g. an ICMP error reported on the socket: nothing was received.
            Some(Err(_)) => {}
        }
    }
}

/// The transport of node `me`'s handlers: the core's network model decides each message's
/// fate; its own timers go to its task's heap.
struct Io<'a> {
    me: NodeId,
    clock: Clock,
    net: &'a mut Network,
    side: &'a [Side],
    sender: &'a Rc<std::net::UdpSocket>,
    wakes: &'a mut Wakes,
    wire: &'a mut Wire,
}

/// What putting frames on the wire needs.
struct Wire {
    nonce: u64,
    frame: Vec<u8>,
    send_errors: u64,
    fatal: Option<String>,
}

impl Shared {
    /// Runs `f` on the hosts with node `me`'s transport at the current virtual time.
    fn run(
        &mut self,
        me: NodeId,
        sender: &Rc<std::net::UdpSocket>,
        wakes: &mut Wakes,
        f: impl FnOnce(&mut Hosts<Node>, SimTime, &mut Io<'_>),
    ) {
        let now = SimTime(self.clock.now_ns());
        let mut wire = Wire {
            nonce: self.nonce,
            frame: std::mem::take(&mut self.frame),
            send_errors: 0,
            fatal: self.fatal.take(),
        };
        let Shared { hosts, net, side, clock, .. } = self;
        let mut io = Io { me, clock: *clock, net, side, sender, wakes, wire: &mut wire };
        f(hosts, now, &mut io);
        self.frame = wire.frame;
        self.send_errors += wire.send_errors;
        self.fatal = wire.fatal;
    }
}

impl Transport<Msg, Timer> for Io<'_> {
    fn send(&mut self, _now: SimTime, from: NodeId, to: NodeId, msg: Msg) {
        for d in self.net.route(from, to).delays() {
            let hold = self.clock.real(d);
            if hold < TIMER_RESOLUTION {
                put_on_wire(self.wire, self.side, self.net, self.clock, from, to, msg.clone(), self.sender);
            } else {
                let (socket, msg) = (Rc::clone(self.sender), msg.clone());
                let due = Instant::now() + hold;
                tokio::task::spawn_local(async move {
                    sleep_until(due).await;
                    with(|g| {
                        let mut wire = Wire {
                            nonce: g.nonce,
                            frame: std::mem::take(&mut g.frame),
                            send_errors: 0,
                            fatal: g.fatal.take(),
                        };
                        put_on_wire(&mut wire, &g.side, &mut g.net, g.clock, from, to, msg, &socket);
                        g.frame = wire.frame;
                        g.send_errors += wire.send_errors;
                        g.fatal = wire.fatal;
                    });
                });
            }
        }
    }

    fn refuse(&mut self, _now: SimTime, from: NodeId, to: NodeId, msg: Msg) {
        refusal(self.side, self.net, self.clock, from, to, msg);
    }

    fn wake(&mut self, at: SimTime, node: NodeId, what: Wake<Msg, Timer>) {
        if node == self.me {
            self.wakes.insert(at.0, what);
        } else if let Some(tx) = &self.side[node.index()].inbox {
            let _ = tx.send(what);
        }
    }
}

/// Puts one datagram on the wire, or, if no process listens at `to` (no socket: crashed or not
/// started; a paused node's socket still takes datagrams), answers the sender with a refusal
/// one (scaled) latency later, as the core does.
#[allow(clippy::too_many_arguments)]
fn put_on_wire(
    wire: &mut Wire,
    side: &[Side],
    net: &mut Network,
    clock: Clock,
    from: NodeId,
    to: NodeId,
    msg: Msg,
    socket: &std::net::UdpSocket,
) {
    match side[to.index()].addr {
        Some(addr) => {
            codec::encode(wire.nonce, from, &msg, &mut wire.frame);
            if wire.frame.len() > MAX_DATAGRAM {
                let len = wire.frame.len();
                wire.fatal.get_or_insert_with(|| {
                    format!(
                        "node {from} sent a message of {len} bytes to {to}, more than one UDP datagram holds \
                         ({MAX_DATAGRAM} bytes)"
                    )
                });
                return;
            }
            if socket.send_to(&wire.frame, addr).is_err() {
                wire.send_errors += 1;
            }
        }
        _ => refusal(side, net, clock, from, to, msg),
    }
}

/// The refused connection: `from` hears of it one (scaled) latency later, subject to the
/// network like any message.
fn refusal(side: &[Side], net: &mut Network, clock: Clock, from: NodeId, to: NodeId, msg: Msg) {
    let back = match net.route(to, from) {
        Delivery::Dropped(_) => return,
        Delivery::Once(d) | Delivery::Twice(d, _) => d,
    };
    let Some(tx) = side[from.index()].inbox.clone() else { return };
    let hold = clock.real(back);
    if hold < TIMER_RESOLUTION {
        let _ = tx.send(Wake::Refused { to, msg });
    } else {
        let due = Instant::now() + hold;
        tokio::task::spawn_local(async move {
            sleep_until(due).await;
            let _ = tx.send(Wake::Refused { to, msg });
        });
    }
}
