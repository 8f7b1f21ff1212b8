//! The wire format of `--real` mode: one `regsim::protocol::Msg` per UDP datagram.
//!
//! The protocol's message enum has no serde derives (nothing in `regsim::protocol` knows how
//! it is carried), so this is a small hand-written codec over every variant: a frame header,
//! then a tag byte and the fields in declaration order, little-endian, vectors as a `u32`
//! count then the elements. It is the only place that knows the bytes; a round-trip test
//! covers every variant.
//!
//! Frame header: magic `b"RG"`, version 1, the run's nonce (`u64`) and the sender's `NodeId`
//! (`u32`). The nonce rejects stray datagrams (e.g. from another run that got an ephemeral
//! port this run used before); the sender id in the header means the receiver never maps
//! source addresses back to nodes (a restarted node may come back on another port).
//!
//! Decoding never trusts a length: a vector count is checked against the bytes left before
//! anything is allocated, and trailing bytes are an error.

use regsim::protocol::{clients, cp, monitoring, nacos, raft, registry};
use std::sync::Arc;

use regsim::protocol::monitoring::alertmanager::AlertMsg;
use regsim::protocol::raft::{Append, Cmd, Entry};
use regsim::protocol::{InstRec, Msg, QueryAnswer, ServiceId, Write};
use regsim_kernel::{NodeId, SimTime};

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

fn put_msg(o: &mut Vec<u8>, msg: &Msg) {
    match msg {
        Msg::Registry(registry::Msg::Write { kind, service, req }) => {
            put_u8(o, 0);
            put_write(o, *kind);
            put_u32(o, service.0);
            put_u64(o, *req);
        }
        Msg::Registry(registry::Msg::WriteOk { req, found }) => {
            put_u8(o, 1);
            put_u64(o, *req);
            put_bool(o, *found);
        }
        Msg::Nacos(nacos::Msg::Forward { origin, kind, service, req }) => {
            put_u8(o, 2);
            put_u32(o, origin.0);
            put_write(o, *kind);
            put_u32(o, service.0);
            put_u64(o, *req);
        }
        Msg::Nacos(nacos::Msg::ForwardOk { origin, req, found }) => {
            put_u8(o, 3);
            put_u32(o, origin.0);
            put_u64(o, *req);
            put_bool(o, *found);
        }
        Msg::Nacos(nacos::Msg::Sync { service, data, seq }) => {
            put_u8(o, 4);
            put_u32(o, service.0);
            put_len(o, data.len());
            for r in data.iter() {
                put_u32(o, r.instance.0);
                put_bool(o, r.healthy);
                put_u64(o, r.last_beat.0);
            }
            put_u32(o, *seq);
        }
        Msg::Nacos(nacos::Msg::SyncOk { service, seq }) => {
            put_u8(o, 5);
            put_u32(o, service.0);
            put_u32(o, *seq);
        }
        Msg::Nacos(nacos::Msg::Verify { checksums }) => {
            put_u8(o, 6);
            put_len(o, checksums.len());
            for (s, c) in checksums.iter() {
                put_u32(o, s.0);
                put_u64(o, *c);
            }
        }
        Msg::Nacos(nacos::Msg::Pull { service }) => {
            put_u8(o, 7);
            put_u32(o, service.0);
        }
        Msg::Nacos(nacos::Msg::Report { req }) => {
            put_u8(o, 8);
            put_u64(o, *req);
        }
        Msg::Nacos(nacos::Msg::ReportOk { req }) => {
            put_u8(o, 9);
            put_u64(o, *req);
        }
        Msg::Registry(registry::Msg::Query { service, req }) => {
            put_u8(o, 10);
            put_u32(o, service.0);
            put_u64(o, *req);
        }
        Msg::Registry(registry::Msg::QueryOk { req, answer }) => {
            put_u8(o, 11);
            put_u64(o, *req);
            put_nodes(o, &answer.instances);
            put_nodes(o, &answer.registered);
        }
        Msg::Registry(registry::Msg::Redirect { req, leader }) => {
            put_u8(o, 12);
            put_u64(o, *req);
            put_bool(o, leader.is_some());
            put_u32(o, leader.map_or(0, |n| n.0));
        }
        Msg::Cp(cp::Msg::Probe { round }) => {
            put_u8(o, 13);
            put_u32(o, *round);
        }
        Msg::Cp(cp::Msg::ProbeOk { round }) => {
            put_u8(o, 14);
            put_u32(o, *round);
        }
        Msg::Registry(registry::Msg::Push { service, instances, push_id }) => {
            put_u8(o, 15);
            put_u32(o, service.0);
            put_nodes(o, instances);
            put_u64(o, *push_id);
        }
        Msg::Registry(registry::Msg::PushAck { push_id }) => {
            put_u8(o, 16);
            put_u64(o, *push_id);
        }
        Msg::App(clients::Msg::Call { req }) => {
            put_u8(o, 17);
            put_u64(o, *req);
        }
        Msg::App(clients::Msg::CallOk { req }) => {
            put_u8(o, 18);
            put_u64(o, *req);
        }
        Msg::Raft(raft::Msg::RequestVote { term, pre, last_index, last_term }) => {
            put_u8(o, 19);
            put_u64(o, *term);
            put_bool(o, *pre);
            put_u32(o, *last_index);
            put_u32(o, *last_term);
        }
        Msg::Raft(raft::Msg::Vote { term, pre, granted }) => {
            put_u8(o, 20);
            put_u64(o, *term);
            put_bool(o, *pre);
            put_bool(o, *granted);
        }
        Msg::Raft(raft::Msg::AppendEntries { term, body }) => {
            put_u8(o, 21);
            put_u64(o, *term);
            put_u32(o, body.prev_index);
            put_u64(o, body.prev_term);
            put_len(o, body.entries.len());
            for e in &body.entries {
                put_u64(o, e.term);
                match e.cmd {
                    Cmd::Noop => put_u8(o, 0),
                    Cmd::Register { service, instance } => {
                        put_u8(o, 1);
                        put_u32(o, service.0);
                        put_u32(o, instance.0);
                    }
                    Cmd::Health { service, instance, healthy } => {
                        put_u8(o, 2);
                        put_u32(o, service.0);
                        put_u32(o, instance.0);
                        put_bool(o, healthy);
                    }
                }
            }
            put_u32(o, body.commit);
            put_u32(o, body.round);
        }
        Msg::Raft(raft::Msg::AppendOk { term, ok, index, round }) => {
            put_u8(o, 22);
            put_u64(o, *term);
            put_bool(o, *ok);
            put_u32(o, *index);
            put_u32(o, *round);
        }
        Msg::Monitoring(monitoring::Msg::Scrape { seq }) => {
            put_u8(o, 23);
            put_u32(o, *seq);
        }
        Msg::Monitoring(monitoring::Msg::ScrapeOk { seq, registry_requests, calls_served }) => {
            put_u8(o, 24);
            put_u32(o, *seq);
            put_u64(o, *registry_requests);
            put_u64(o, *calls_served);
        }
        Msg::Monitoring(monitoring::Msg::Alerts { batch }) => {
            put_u8(o, 25);
            put_len(o, batch.len());
            for a in batch.iter() {
                put_labels(o, &a.labels);
                put_u64(o, a.starts_at_ms as u64);
                put_u64(o, a.ends_at_ms as u64);
            }
        }
        Msg::App(clients::Msg::CallFailed { req, code }) => {
            put_u8(o, 26);
            put_u64(o, *req);
            put_u32(o, u32::from(*code));
        }
        Msg::Monitoring(monitoring::Msg::Exposition { seq, body }) => {
            put_u8(o, 27);
            put_u32(o, *seq);
            put_len(o, body.samples.len());
            for (labels, v, t) in &body.samples {
                put_labels(o, labels);
                put_u64(o, v.to_bits());
                put_bool(o, t.is_some());
                put_u64(o, t.unwrap_or(0) as u64);
            }
        }
        Msg::Monitoring(monitoring::Msg::Federate { seq, query }) => {
            put_u8(o, 28);
            put_u32(o, *seq);
            put_len(o, query.matchers.len());
            for m in &query.matchers {
                put_str(o, &m.text);
            }
        }
    }
}

fn put_labels(o: &mut Vec<u8>, labels: &regsim::monitor::Labels) {
    let pairs: Vec<(&str, &str)> = labels.iter().collect();
    put_len(o, pairs.len());
    for (k, v) in pairs {
        put_str(o, k);
        put_str(o, v);
    }
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

    fn msg(&mut self) -> R<Msg> {
        Ok(match self.u8()? {
            0 => {
                Msg::Registry(registry::Msg::Write { kind: self.write()?, service: self.service()?, req: self.u64()? })
            }
            1 => Msg::Registry(registry::Msg::WriteOk { req: self.u64()?, found: self.bool()? }),
            2 => Msg::Nacos(nacos::Msg::Forward {
                origin: self.node()?,
                kind: self.write()?,
                service: self.service()?,
                req: self.u64()?,
            }),
            3 => Msg::Nacos(nacos::Msg::ForwardOk { origin: self.node()?, req: self.u64()?, found: self.bool()? }),
            4 => {
                let service = self.service()?;
                let n = self.len(13)?;
                let data = (0..n)
                    .map(|_| {
                        Ok(InstRec { instance: self.node()?, healthy: self.bool()?, last_beat: SimTime(self.u64()?) })
                    })
                    .collect::<R<Vec<_>>>()?;
                Msg::Nacos(nacos::Msg::Sync { service, data: Arc::new(data), seq: self.u32()? })
            }
            5 => Msg::Nacos(nacos::Msg::SyncOk { service: self.service()?, seq: self.u32()? }),
            6 => {
                let n = self.len(12)?;
                let checksums = (0..n).map(|_| Ok((self.service()?, self.u64()?))).collect::<R<Vec<_>>>()?;
                Msg::Nacos(nacos::Msg::Verify { checksums: Arc::new(checksums) })
            }
            7 => Msg::Nacos(nacos::Msg::Pull { service: self.service()? }),
            8 => Msg::Nacos(nacos::Msg::Report { req: self.u64()? }),
            9 => Msg::Nacos(nacos::Msg::ReportOk { req: self.u64()? }),
            10 => Msg::Registry(registry::Msg::Query { service: self.service()?, req: self.u64()? }),
            11 => {
                let req = self.u64()?;
                let answer = QueryAnswer { instances: self.nodes()?, registered: self.nodes()? };
                Msg::Registry(registry::Msg::QueryOk { req, answer: Arc::new(answer) })
            }
            12 => {
                let req = self.u64()?;
                let some = self.bool()?;
                let n = self.node()?;
                Msg::Registry(registry::Msg::Redirect { req, leader: some.then_some(n) })
            }
            13 => Msg::Cp(cp::Msg::Probe { round: self.u32()? }),
            14 => Msg::Cp(cp::Msg::ProbeOk { round: self.u32()? }),
            15 => Msg::Registry(registry::Msg::Push {
                service: self.service()?,
                instances: self.nodes()?,
                push_id: self.u64()?,
            }),
            16 => Msg::Registry(registry::Msg::PushAck { push_id: self.u64()? }),
            17 => Msg::App(clients::Msg::Call { req: self.u64()? }),
            18 => Msg::App(clients::Msg::CallOk { req: self.u64()? }),
            19 => Msg::Raft(raft::Msg::RequestVote {
                term: self.u64()?,
                pre: self.bool()?,
                last_index: self.u32()?,
                last_term: self.u32()?,
            }),
            20 => Msg::Raft(raft::Msg::Vote { term: self.u64()?, pre: self.bool()?, granted: self.bool()? }),
            21 => {
                let term = self.u64()?;
                let prev_index = self.u32()?;
                let prev_term = self.u64()?;
                let n = self.len(9)?;
                let entries = (0..n).map(|_| self.entry()).collect::<R<Vec<_>>>()?;
                let body = Append { prev_index, prev_term, entries, commit: self.u32()?, round: self.u32()? };
                Msg::Raft(raft::Msg::AppendEntries { term, body: Arc::new(body) })
            }
            22 => Msg::Raft(raft::Msg::AppendOk {
                term: self.u64()?,
                ok: self.bool()?,
                index: self.u32()?,
                round: self.u32()?,
            }),
            23 => Msg::Monitoring(monitoring::Msg::Scrape { seq: self.u32()? }),
            24 => Msg::Monitoring(monitoring::Msg::ScrapeOk {
                seq: self.u32()?,
                registry_requests: self.u64()?,
                calls_served: self.u64()?,
            }),
            25 => {
                let n = self.len(20)?;
                let mut batch = Vec::with_capacity(n);
                for _ in 0..n {
                    let labels = self.labels()?;
                    let starts_at_ms = self.u64()? as i64;
                    let ends_at_ms = self.u64()? as i64;
                    batch.push(AlertMsg { labels, starts_at_ms, ends_at_ms });
                }
                Msg::Monitoring(monitoring::Msg::Alerts { batch: Arc::new(batch) })
            }
            26 => {
                let req = self.u64()?;
                let code = u16::try_from(self.u32()?).map_err(|_| DecodeError::Malformed("status code"))?;
                Msg::App(clients::Msg::CallFailed { req, code })
            }
            27 => {
                let seq = self.u32()?;
                let n = self.len(21)?;
                let mut samples = Vec::with_capacity(n);
                for _ in 0..n {
                    let labels = self.labels()?;
                    let v = f64::from_bits(self.u64()?);
                    let stamped = self.bool()?;
                    let t = self.u64()? as i64;
                    samples.push((labels, v, stamped.then_some(t)));
                }
                Msg::Monitoring(monitoring::Msg::Exposition {
                    seq,
                    body: Arc::new(regsim::protocol::monitoring::Exposition { samples }),
                })
            }
            28 => {
                let seq = self.u32()?;
                let n = self.len(4)?;
                let mut matchers = Vec::with_capacity(n);
                for _ in 0..n {
                    let text = self.string()?;
                    matchers
                        .push(regsim::monitor::Query::parse(&text).map_err(|_| DecodeError::Malformed("selector"))?);
                }
                Msg::Monitoring(monitoring::Msg::Federate {
                    seq,
                    query: Arc::new(regsim::protocol::monitoring::prometheus::FederateQuery::new(matchers)),
                })
            }
            _ => return Err(DecodeError::Malformed("unknown message tag")),
        })
    }

    fn labels(&mut self) -> R<regsim::monitor::Labels> {
        let pairs = self.len(8)?;
        let mut kv = Vec::with_capacity(pairs);
        for _ in 0..pairs {
            kv.push((self.string()?, self.string()?));
        }
        Ok(regsim::monitor::Labels::from_pairs(kv))
    }

    fn entry(&mut self) -> R<Entry> {
        let term = self.u64()?;
        let cmd = match self.u8()? {
            0 => Cmd::Noop,
            1 => Cmd::Register { service: self.service()?, instance: self.node()? },
            2 => Cmd::Health { service: self.service()?, instance: self.node()?, healthy: self.bool()? },
            _ => return Err(DecodeError::Malformed("unknown raft command")),
        };
        Ok(Entry { term, cmd })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_variant() -> Vec<Msg> {
        let nodes = |v: &[u32]| Arc::new(v.iter().copied().map(NodeId).collect::<Vec<_>>());
        let rec = |i, h, t| InstRec { instance: NodeId(i), healthy: h, last_beat: SimTime(t) };
        let entries = vec![
            Entry { term: 1, cmd: Cmd::Noop },
            Entry { term: 2, cmd: Cmd::Register { service: ServiceId(3), instance: NodeId(9) } },
            Entry { term: 2, cmd: Cmd::Health { service: ServiceId(3), instance: NodeId(9), healthy: false } },
        ];
        vec![
            Msg::Registry(registry::Msg::Write { kind: Write::Register, service: ServiceId(1), req: 7 }),
            Msg::Registry(registry::Msg::Write { kind: Write::Beat, service: ServiceId(0), req: u64::MAX }),
            Msg::Registry(registry::Msg::WriteOk { req: 3, found: false }),
            Msg::Nacos(nacos::Msg::Forward { origin: NodeId(12), kind: Write::Beat, service: ServiceId(2), req: 5 }),
            Msg::Nacos(nacos::Msg::ForwardOk { origin: NodeId(12), req: 5, found: true }),
            Msg::Nacos(nacos::Msg::Sync {
                service: ServiceId(1),
                data: Arc::new(vec![rec(4, true, 10), rec(5, false, u64::MAX)]),
                seq: 9,
            }),
            Msg::Nacos(nacos::Msg::Sync { service: ServiceId(1), data: Arc::new(Vec::new()), seq: 0 }),
            Msg::Nacos(nacos::Msg::SyncOk { service: ServiceId(1), seq: 9 }),
            Msg::Nacos(nacos::Msg::Verify {
                checksums: Arc::new(vec![(ServiceId(0), 0xdead_beef), (ServiceId(4), 1)]),
            }),
            Msg::Nacos(nacos::Msg::Pull { service: ServiceId(8) }),
            Msg::Nacos(nacos::Msg::Report { req: 1 }),
            Msg::Nacos(nacos::Msg::ReportOk { req: 1 }),
            Msg::Registry(registry::Msg::Query { service: ServiceId(0), req: 44 }),
            Msg::Registry(registry::Msg::QueryOk {
                req: 44,
                answer: Arc::new(QueryAnswer { instances: nodes(&[1, 2]), registered: nodes(&[1, 2, 3]) }),
            }),
            Msg::Registry(registry::Msg::Redirect { req: 2, leader: Some(NodeId(0)) }),
            Msg::Registry(registry::Msg::Redirect { req: 2, leader: None }),
            Msg::Cp(cp::Msg::Probe { round: 6 }),
            Msg::Cp(cp::Msg::ProbeOk { round: 6 }),
            Msg::Registry(registry::Msg::Push { service: ServiceId(0), instances: nodes(&[7, 8, 9]), push_id: 11 }),
            Msg::Registry(registry::Msg::PushAck { push_id: 11 }),
            Msg::App(clients::Msg::Call { req: 100 }),
            Msg::App(clients::Msg::CallOk { req: 100 }),
            Msg::Raft(raft::Msg::RequestVote { term: 4, pre: true, last_index: 10, last_term: 3 }),
            Msg::Raft(raft::Msg::Vote { term: 4, pre: false, granted: true }),
            Msg::Raft(raft::Msg::AppendEntries {
                term: 5,
                body: Arc::new(Append { prev_index: 2, prev_term: 1, entries, commit: 2, round: 77 }),
            }),
            Msg::Raft(raft::Msg::AppendOk { term: 5, ok: true, index: 5, round: 77 }),
            Msg::Monitoring(monitoring::Msg::Scrape { seq: 3 }),
            Msg::Monitoring(monitoring::Msg::ScrapeOk { seq: 3, registry_requests: 12, calls_served: 40 }),
            Msg::App(clients::Msg::CallFailed { req: 9, code: 503 }),
            Msg::Monitoring(monitoring::Msg::Exposition {
                seq: 4,
                body: Arc::new(regsim::protocol::monitoring::Exposition {
                    samples: vec![
                        (regsim::monitor::Labels::metric("up", &[("job", "api")]), 1.0, Some(15_000)),
                        (regsim::monitor::Labels::metric("x_total", &[]), f64::from_bits(0x7ff0_0000_0000_0002), None),
                    ],
                }),
            }),
            Msg::Monitoring(monitoring::Msg::Federate {
                seq: 5,
                query: Arc::new(regsim::protocol::monitoring::prometheus::FederateQuery::new(vec![
                    regsim::monitor::Query::parse("{job=~\".+\"}").expect("selector"),
                ])),
            }),
            Msg::Monitoring(monitoring::Msg::Alerts {
                batch: Arc::new(vec![AlertMsg {
                    labels: regsim::monitor::Labels::metric("ALERTS", &[("alertname", "X"), ("instance", "n4")]),
                    starts_at_ms: 1_000,
                    ends_at_ms: -5,
                }]),
            }),
        ]
    }

    #[test]
    fn every_variant_round_trips() {
        let mut buf = Vec::new();
        for msg in every_variant() {
            encode(42, NodeId(3), &msg, &mut buf);
            assert!(buf.len() <= MAX_DATAGRAM);
            assert_eq!(decode(42, &buf), Ok((NodeId(3), msg.clone())), "{msg:?}");
        }
    }

    #[test]
    fn beats_are_small() {
        let mut buf = Vec::new();
        encode(
            1,
            NodeId(1),
            &Msg::Registry(registry::Msg::Write { kind: Write::Beat, service: ServiceId(0), req: 1 }),
            &mut buf,
        );
        assert_eq!(buf.len(), HEADER_LEN + 1 + 1 + 4 + 8);
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
