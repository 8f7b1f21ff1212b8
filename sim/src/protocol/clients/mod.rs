//! Registry clients and what they call: `instance` (a service instance: register, beat,
//! serve calls, expose metrics), `view` (a client's cached view of a service: query, poll,
//! push), `consumer` (requests to instances through a balancer), `gateway` (an API gateway
//! with retries, a circuit breaker per upstream in `breaker` and a rate limit in
//! `ratelimit`). The application calls between them are this folder's messages.

pub mod breaker;
pub mod consumer;
pub mod gateway;
pub mod instance;
pub mod ratelimit;
pub mod settings;
#[cfg(test)]
mod tests;
pub mod view;

use regsim_kernel::NodeId;

/// Application calls (consumer or gateway -> instance). Explicit discriminants: the digest
/// hashes them.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
#[repr(u8)]
pub enum Msg {
    Call {
        req: u64,
    } = 1,
    CallOk {
        req: u64,
    } = 2,
    /// Gateway -> consumer: the request failed with this HTTP status (429, 502, 503, 504).
    CallFailed {
        code: u16,
        req: u64,
    } = 3,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
#[repr(u8)]
pub enum Timer {
    NextCall = 1,
    CallTimeout {
        attempt: u32,
        req: u64,
    } = 2,
    /// An instance finished serving call `req` of `client`.
    Served {
        client: NodeId,
        req: u64,
    } = 3,
}

/// The name a balancer knows an instance by.
pub fn instance_name(n: NodeId) -> String {
    n.to_string()
}
