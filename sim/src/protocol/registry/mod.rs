//! The registry's client API and the vocabulary every registry role shares: services, the
//! instance records servers hold, query answers, and the messages and timers of the client
//! side (an instance's register and beat, a consumer's query, poll and push), spoken alike by
//! the Nacos AP servers (`nacos`) and the CP servers (`cp`).
//!
//! Nacos 1.4 `InstanceController` (`/nacos/v1/ns/instance`, `.../beat`, `.../list`) and the
//! UDP push of `PushService`; see ../shared/ANCHORS.md.

use std::sync::Arc;

use regsim_kernel::{NodeId, SimTime};

/// A registered service, interned to a small id so messages stay small.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ServiceId(pub u32);

/// One instance as a server's copy holds it (and as Distro ships it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InstRec {
    pub instance: NodeId,
    pub healthy: bool,
    /// Local time of the responsible server when it last heard a beat.
    pub last_beat: SimTime,
}

/// A service's instance list as shipped between servers (sorted by instance).
pub type Datum = Arc<Vec<InstRec>>;

/// The healthy instances of a service, as pushed or returned to consumers (sorted).
pub type InstanceList = Arc<Vec<NodeId>>;

/// A server's answer to a list query: the healthy instances (what the consumer's cache keeps)
/// and every registered instance, healthy or not (Nacos returns all hosts with a health flag
/// and the client filters). Behind one `Arc` so messages stay small.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq)]
pub struct QueryAnswer {
    pub instances: InstanceList,
    pub registered: InstanceList,
}

/// Which client write a forwarded request carries.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Write {
    Register,
    Beat,
}

/// A server's copy of one instance, as observations report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyState {
    Absent,
    Healthy,
    Unhealthy,
}

/// A client-visible registry operation, for the linearizability checker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientOp {
    /// The instance registers itself.
    Register(ServiceId),
    /// A consumer lists the service's instances.
    List(ServiceId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    Register = 0,
    Beat = 1,
    Query = 2,
    Call = 3,
}

/// The list of registry servers every client is configured with.
pub type ServerList = Arc<[NodeId]>;

/// Java's `String.hashCode` (UTF-16 code units, wrapping `31 * h + c`), which Nacos uses
/// for the responsible-server rule.
pub fn java_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// Client API messages. Explicit discriminants: the digest hashes them, not declaration order.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
#[repr(u8)]
pub enum Msg {
    /// Instance -> server: `POST /nacos/v1/ns/instance` (register) or `PUT .../beat`.
    Write {
        kind: Write,
        service: ServiceId,
        req: u64,
    } = 1,
    /// `found = false` is Nacos' RESOURCE_NOT_FOUND (20404) for a beat: re-register at once.
    WriteOk {
        found: bool,
        req: u64,
    } = 2,
    /// Consumer <-> server: `GET /nacos/v1/ns/instance/list` (subscribes the caller to pushes).
    Query {
        service: ServiceId,
        req: u64,
    } = 3,
    QueryOk {
        req: u64,
        answer: Arc<QueryAnswer>,
    } = 4,
    /// CP mode: this server is not the leader; retry at `leader` if it knows one.
    Redirect {
        leader: Option<NodeId>,
        req: u64,
    } = 5,
    /// Server -> consumer: UDP push of the healthy instance list; the consumer acks it.
    Push {
        service: ServiceId,
        instances: InstanceList,
        push_id: u64,
    } = 6,
    PushAck {
        push_id: u64,
    } = 7,
    /// An HTTP error answer to a write (a proxy that failed: 500, or a 400 it relays); the
    /// client tries the next server (`NamingProxy.callServer` throws on any non-200 status).
    WriteError {
        req: u64,
    } = 8,
}

/// Client-side timers (instances and consumers).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
#[repr(u8)]
pub enum Timer {
    Beat = 1,
    /// Attempt `attempt` of a request timed out (a later attempt's timer is another one).
    RequestTimeout {
        attempt: u16,
        /// The second leg of a long timeout (see `clients::instance`): the first fires at
        /// `MAX_FIRST_LEG` and, if the request still waits, arms the rest. (Declared before
        /// `req`: `repr(u8)` keeps field order, and here it packs into the padding.)
        rest: bool,
        req: u64,
    } = 2,
    Poll = 3,
    QueryTimeout {
        attempt: u16,
        req: u64,
    } = 4,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_matches_java() {
        // Values from Java: "".hashCode() = 0, "a" = 97, "hello" = 99162322, and the famous
        // "polygenelubricants".hashCode() = Integer.MIN_VALUE.
        assert_eq!(java_hash(""), 0);
        assert_eq!(java_hash("a"), 97);
        assert_eq!(java_hash("hello"), 99_162_322);
        assert_eq!(java_hash("polygenelubricants"), i32::MIN);
    }
}
