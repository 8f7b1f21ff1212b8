//! Which transport each protocol's messages take (`[network.transport]`), and the channel of
//! every message ([`Channel`] for [`Msg`]; the kernel's `net::wire` says what a datagram and
//! a stream do with a packet).
//!
//! The defaults are what the real systems use:
//! - `registry`: the Nacos 1.4 naming client's HTTP API (register, beat, query), HTTP/1.1 over
//!   TCP through `JdkHttpClientRequest` (`common/.../http/AbstractHttpClientFactory.java`).
//!   Its `HttpURLConnection` keeps an idle connection for 5 s (the JDK's `KeepAliveCache`),
//!   no longer than the beat interval, so each request is modelled as opening its own
//!   connection: a handshake, and a connect timeout (`NamingHttpClientManager`
//!   `CON_TIME_OUT_MILLIS`, 3 s, `[instances|consumers] connect_timeout`) before the read
//!   timeout (`READ_TIME_OUT_MILLIS`, 50 s, `read_timeout`) applies. Answers come back on the
//!   same connection.
//! - `push`: the server's UDP push and the client's ack (`PushService.udpSocket`, the
//!   client's `PushReceiver`): datagrams.
//! - `servers`: server to server (Distro syncs and verifies, forwarded writes, the
//!   membership report): HTTP over pooled keep-alive connections (`NacosAsyncRestTemplate`).
//! - `raft`: Raft RPCs over long-lived streams (etcd's `rafthttp` streams, JRaft's bolt
//!   connections).
//! - `health`: the CP registry's health probe of a persistent instance and its answer.
//! - `app`: consumers' and gateways' calls to instances (HTTP keep-alive, as Go kit's
//!   `http.Client` keeps them).
//! - `monitoring`: scrapes, federation and alert notifications (Prometheus and Alertmanager
//!   keep connections alive).
//!
//! A `datagram` choice turns a protocol's TCP into UDP: a lost packet is a lost request, which
//! the client sees only as a missing answer (then its timeout for an answer is its connect
//! timeout; see [`crate::protocol::clients::settings`]).

use serde::Deserialize;

use crate::protocol::{Msg, cp, registry};
use regsim_kernel::SimDuration;
use regsim_kernel::net::{Channel, TcpSpec, Wire, WireKind};

/// The channels of every protocol (the kernel indexes its wires by these numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Chan {
    /// An instance's register or beat (opens a connection).
    RegistryWrite = 0,
    /// A consumer's query (opens a connection).
    RegistryQuery = 1,
    /// A server's answer to either, on the request's connection.
    RegistryReply = 2,
    Push = 3,
    Servers = 4,
    Raft = 5,
    Health = 6,
    App = 7,
    Monitoring = 8,
}

impl Channel for Msg {
    #[inline]
    fn channel(&self) -> u8 {
        let c = match self {
            Msg::Registry(m) => match m {
                registry::Msg::Write { .. } => Chan::RegistryWrite,
                registry::Msg::Query { .. } => Chan::RegistryQuery,
                registry::Msg::WriteOk { .. }
                | registry::Msg::WriteError { .. }
                | registry::Msg::QueryOk { .. }
                | registry::Msg::Redirect { .. } => Chan::RegistryReply,
                registry::Msg::Push { .. } | registry::Msg::PushAck { .. } => Chan::Push,
            },
            Msg::Nacos(_) => Chan::Servers,
            Msg::Raft(_) => Chan::Raft,
            Msg::Cp(cp::Msg::Probe { .. } | cp::Msg::ProbeOk { .. }) => Chan::Health,
            Msg::App(_) => Chan::App,
            Msg::Monitoring(_) => Chan::Monitoring,
        };
        c as u8
    }
}

/// `[network.transport]`: the transport of each protocol, and `[network.transport.tcp]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TransportSpec {
    pub registry: WireKind,
    pub push: WireKind,
    pub servers: WireKind,
    pub raft: WireKind,
    pub health: WireKind,
    pub app: WireKind,
    pub monitoring: WireKind,
    pub tcp: TcpSpec,
}

impl Default for TransportSpec {
    fn default() -> Self {
        use WireKind::{Datagram, Stream};
        TransportSpec {
            registry: Stream,
            push: Datagram,
            servers: Stream,
            raft: Stream,
            health: Stream,
            app: Stream,
            monitoring: Stream,
            tcp: TcpSpec::default(),
        }
    }
}

impl TransportSpec {
    /// The wire of every channel; registry requests connect per request with the instances'
    /// and the consumers' connect timeouts.
    pub fn wires(&self, instances_connect: SimDuration, consumers_connect: SimDuration) -> Vec<(u8, Wire)> {
        let kept = |k: WireKind| match k {
            WireKind::Datagram => Wire::Datagram,
            WireKind::Stream => Wire::Stream { connect_timeout: None },
        };
        let connecting = |k: WireKind, t: SimDuration| match k {
            WireKind::Datagram => Wire::Datagram,
            WireKind::Stream => Wire::Stream { connect_timeout: Some(t) },
        };
        vec![
            (Chan::RegistryWrite as u8, connecting(self.registry, instances_connect)),
            (Chan::RegistryQuery as u8, connecting(self.registry, consumers_connect)),
            (Chan::RegistryReply as u8, kept(self.registry)),
            (Chan::Push as u8, kept(self.push)),
            (Chan::Servers as u8, kept(self.servers)),
            (Chan::Raft as u8, kept(self.raft)),
            (Chan::Health as u8, kept(self.health)),
            (Chan::App as u8, kept(self.app)),
            (Chan::Monitoring as u8, kept(self.monitoring)),
        ]
    }

    /// Whether some protocol runs on TCP.
    pub fn any_stream(&self) -> bool {
        [self.registry, self.push, self.servers, self.raft, self.health, self.app, self.monitoring]
            .contains(&WireKind::Stream)
    }

    pub fn validate(&self) -> Result<(), crate::protocol::config::Invalid> {
        let t = &self.tcp;
        crate::protocol::config::periods(&[("tcp.rto_min", t.rto_min), ("tcp.syn_rto", t.syn_rto)])?;
        if t.rto_max < t.rto_min {
            return Err(("tcp.rto_max".into(), format!("expected at least tcp.rto_min ({})", t.rto_min)));
        }
        for (key, n) in [("tcp.retries", t.retries), ("tcp.syn_retries", t.syn_retries)] {
            if n > 30 {
                return Err((key.into(), format!("expected at most 30 retransmissions, got {n}")));
            }
        }
        Ok(())
    }
}
