//! The wire format of `--real` mode: one `regsim::protocol::Msg` per UDP datagram.
//!
//! The protocol's message enum has no serde derives (nothing in `regsim::protocol` knows how
//! it is carried), so this is a small hand-written codec over every variant: a frame header,
//! then a tag byte and the fields in declaration order, little-endian, vectors as a `u32`
//! count then the elements. This module and its children are the only place that knows the
//! bytes; a round-trip test per protocol covers every variant.
//!
//! Frame header: magic `b"RG"`, version 1, the run's nonce (`u64`) and the sender's `NodeId`
//! (`u32`). The nonce rejects stray datagrams (e.g. from another run that got an ephemeral
//! port this run used before); the sender id in the header means the receiver never maps
//! source addresses back to nodes (a restarted node may come back on another port).
//!
//! Decoding never trusts a length: a vector count is checked against the bytes left before
//! anything is allocated, and trailing bytes are an error.
//!
//! **Layout.** This file holds the frame, the primitives (the `put_*` writers, [`Reader`]) and
//! the dispatch; each protocol's messages are encoded in its own file ([`registry`],
//! [`nacos`], [`raft`], [`cp`], [`clients`], [`monitoring`]), as `put` and `get`. The wire has
//! no protocol byte: the message tag is one byte space shared by every protocol (their values
//! interleave, in the order the variants were added). Each protocol file names the tags it
//! owns (`TAGS`); [`OWNER`] maps a tag back to its protocol, and building it at compile time
//! refuses a tag claimed twice.

mod clients;
mod cp;
mod monitoring;
mod nacos;
mod raft;
mod registry;

use std::sync::Arc;

use regsim::protocol::{Msg, ServiceId, Write};
use regsim_kernel::NodeId;

/// The largest UDP payload over IPv4 (65,535 − 8 UDP − 20 IP header bytes).
pub const MAX_DATAGRAM: usize = 65_507;

const MAGIC: [u8; 2] = *b"RG";
const VERSION: u8 = 1;
/// Magic, version, nonce, sender.
pub const HEADER_LEN: usize = 2 + 1 + 8 + 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Not a frame of this format and version, or of another run.
    Foreign,
    /// Cut short, an unknown tag, a count larger than the bytes left, or bytes left over.
    Malformed(&'static str),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Foreign => write!(f, "not a regsim frame of this run"),
            DecodeError::Malformed(what) => write!(f, "malformed frame: {what}"),
        }
    }
}

/// Encodes `msg` from `from` into `out` (cleared first). The caller checks
/// `out.len() <= MAX_DATAGRAM`.
pub fn encode(nonce: u64, from: NodeId, msg: &Msg, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    put_u64(out, nonce);
    put_u32(out, from.0);
    put_msg(out, msg);
}

/// Decodes a frame of run `nonce`: (sender, message).
pub fn decode(nonce: u64, buf: &[u8]) -> Result<(NodeId, Msg), DecodeError> {
    let mut r = Reader { buf };
    if r.bytes(2).ok() != Some(&MAGIC[..]) || r.u8().ok() != Some(VERSION) || r.u64().ok() != Some(nonce) {
        return Err(DecodeError::Foreign);
    }
    let from = r.node()?;
    let msg = r.msg()?;
    if !r.buf.is_empty() {
        return Err(DecodeError::Malformed("trailing bytes"));
    }
    Ok((from, msg))
}

/// The protocol a message tag belongs to (see the module doc, "Layout").
#[derive(Clone, Copy)]
enum Protocol {
    Registry,
    Nacos,
    Raft,
    Cp,
    Clients,
    Monitoring,
}

/// Which protocol owns each message tag; `None`: no message has it.
const OWNER: [Option<Protocol>; 256] = {
    let mut t = [None; 256];
    t = claim(t, registry::TAGS, Protocol::Registry);
    t = claim(t, nacos::TAGS, Protocol::Nacos);
    t = claim(t, raft::TAGS, Protocol::Raft);
    t = claim(t, cp::TAGS, Protocol::Cp);
    t = claim(t, clients::TAGS, Protocol::Clients);
    t = claim(t, monitoring::TAGS, Protocol::Monitoring);
    t
};

/// `table` with `tags` given to `p`; fails the build if one of them is taken already.
const fn claim(mut table: [Option<Protocol>; 256], tags: &[u8], p: Protocol) -> [Option<Protocol>; 256] {
    let mut i = 0;
    while i < tags.len() {
        assert!(table[tags[i] as usize].is_none(), "a message tag is claimed by two protocols");
        table[tags[i] as usize] = Some(p);
        i += 1;
    }
    table
}

fn put_msg(o: &mut Vec<u8>, msg: &Msg) {
    match msg {
        Msg::Registry(m) => registry::put(o, m),
        Msg::Nacos(m) => nacos::put(o, m),
        Msg::Raft(m) => raft::put(o, m),
        Msg::Cp(m) => cp::put(o, m),
        Msg::App(m) => clients::put(o, m),
        Msg::Monitoring(m) => monitoring::put(o, m),
    }
}

fn put_u8(o: &mut Vec<u8>, v: u8) {
    o.push(v);
}
fn put_u32(o: &mut Vec<u8>, v: u32) {
    o.extend_from_slice(&v.to_le_bytes());
}
fn put_u64(o: &mut Vec<u8>, v: u64) {
    o.extend_from_slice(&v.to_le_bytes());
}
fn put_bool(o: &mut Vec<u8>, v: bool) {
    o.push(u8::from(v));
}
fn put_len(o: &mut Vec<u8>, n: usize) {
    put_u32(o, u32::try_from(n).unwrap_or(u32::MAX));
}
fn put_write(o: &mut Vec<u8>, w: Write) {
    put_u8(
        o,
        match w {
            Write::Register => 0,
            Write::Beat => 1,
        },
    );
}
fn put_str(o: &mut Vec<u8>, v: &str) {
    put_len(o, v.len());
    o.extend_from_slice(v.as_bytes());
}
fn put_nodes(o: &mut Vec<u8>, v: &[NodeId]) {
    put_len(o, v.len());
    v.iter().for_each(|n| put_u32(o, n.0));
}

struct Reader<'a> {
    buf: &'a [u8],
}

type R<T> = Result<T, DecodeError>;

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> R<&'a [u8]> {
        if self.buf.len() < n {
            return Err(DecodeError::Malformed("cut short"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> R<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> R<u8> {
        Ok(self.array::<1>()?[0])
    }
    fn u32(&mut self) -> R<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> R<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn bool(&mut self) -> R<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::Malformed("bool")),
        }
    }
    fn node(&mut self) -> R<NodeId> {
        self.u32().map(NodeId)
    }
    fn service(&mut self) -> R<ServiceId> {
        self.u32().map(ServiceId)
    }
    fn write(&mut self) -> R<Write> {
        match self.u8()? {
            0 => Ok(Write::Register),
            1 => Ok(Write::Beat),
            _ => Err(DecodeError::Malformed("write kind")),
        }
    }
    /// A vector count, checked against the bytes left (each element takes at least `min`).
    fn len(&mut self, min: usize) -> R<usize> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min) > self.buf.len() {
            return Err(DecodeError::Malformed("count larger than the frame"));
        }
        Ok(n)
    }
    fn string(&mut self) -> R<String> {
        let n = self.len(1)?;
        String::from_utf8(self.bytes(n)?.to_vec()).map_err(|_| DecodeError::Malformed("utf-8"))
    }
    fn nodes(&mut self) -> R<Arc<Vec<NodeId>>> {
        let n = self.len(4)?;
        (0..n).map(|_| self.node()).collect::<R<Vec<_>>>().map(Arc::new)
    }

    /// A message: its tag, then its protocol's fields.
    fn msg(&mut self) -> R<Msg> {
        let tag = self.u8()?;
        Ok(match OWNER[usize::from(tag)] {
            Some(Protocol::Registry) => Msg::Registry(registry::get(self, tag)?),
            Some(Protocol::Nacos) => Msg::Nacos(nacos::get(self, tag)?),
            Some(Protocol::Raft) => Msg::Raft(raft::get(self, tag)?),
            Some(Protocol::Cp) => Msg::Cp(cp::get(self, tag)?),
            Some(Protocol::Clients) => Msg::App(clients::get(self, tag)?),
            Some(Protocol::Monitoring) => Msg::Monitoring(monitoring::get(self, tag)?),
            None => return Err(unknown_tag()),
        })
    }
}

/// A tag no message has (a protocol's `get` returns it too for a tag outside its `TAGS`).
fn unknown_tag() -> DecodeError {
    DecodeError::Malformed("unknown message tag")
}

#[cfg(test)]
mod tests {
    use super::*;
    use regsim::protocol::{nacos, registry};

    /// Every message of `msgs` survives a frame unchanged and fits a datagram.
    pub(super) fn assert_round_trips(msgs: impl IntoIterator<Item = Msg>) {
        let mut buf = Vec::new();
        for msg in msgs {
            encode(42, NodeId(3), &msg, &mut buf);
            assert!(buf.len() <= MAX_DATAGRAM);
            assert_eq!(decode(42, &buf), Ok((NodeId(3), msg.clone())), "{msg:?}");
        }
    }

    #[test]
    fn foreign_and_broken_frames_are_rejected() {
        let mut buf = Vec::new();
        encode(42, NodeId(3), &Msg::Nacos(nacos::Msg::Report { req: 1 }), &mut buf);
        assert_eq!(decode(43, &buf), Err(DecodeError::Foreign), "another run's nonce");
        assert_eq!(decode(42, b"hello"), Err(DecodeError::Foreign));
        for cut in HEADER_LEN..buf.len() {
            assert!(matches!(decode(42, &buf[..cut]), Err(DecodeError::Malformed(_))), "cut at {cut}");
        }
        let mut long = buf.clone();
        long.push(0);
        assert_eq!(decode(42, &long), Err(DecodeError::Malformed("trailing bytes")));
        // A count of 2^32 - 1 nodes in a few bytes is refused before allocating.
        let mut lie = Vec::new();
        encode(
            42,
            NodeId(3),
            &Msg::Registry(registry::Msg::Push { service: ServiceId(0), instances: Arc::new(Vec::new()), push_id: 0 }),
            &mut lie,
        );
        lie[HEADER_LEN + 5..HEADER_LEN + 9].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(42, &lie), Err(DecodeError::Malformed("count larger than the frame")));
        let mut tag = buf.clone();
        tag[HEADER_LEN] = 200;
        assert_eq!(decode(42, &tag), Err(DecodeError::Malformed("unknown message tag")));
    }
}
