//! The registry protocol's messages (`regsim::protocol::registry::Msg`), common to every
//! registry mode: a client's writes (register, beat) and queries with their answers, the
//! redirect to the leader, and the server's pushes with their acks.

use std::sync::Arc;

use regsim::protocol::QueryAnswer;
use regsim::protocol::registry::Msg;

use super::{R, Reader, put_bool, put_nodes, put_u8, put_u32, put_u64, put_write, unknown_tag};

const WRITE: u8 = 0;
const WRITE_OK: u8 = 1;
const QUERY: u8 = 10;
const QUERY_OK: u8 = 11;
const REDIRECT: u8 = 12;
const PUSH: u8 = 15;
const PUSH_ACK: u8 = 16;
const WRITE_ERROR: u8 = 30;
/// The message tags of this protocol.
pub(super) const TAGS: &[u8] = &[WRITE, WRITE_OK, QUERY, QUERY_OK, REDIRECT, PUSH, PUSH_ACK, WRITE_ERROR];

pub(super) fn put(o: &mut Vec<u8>, msg: &Msg) {
    match msg {
        Msg::Write { kind, service, req } => {
            put_u8(o, WRITE);
            put_write(o, *kind);
            put_u32(o, service.0);
            put_u64(o, *req);
        }
        Msg::WriteOk { req, found } => {
            put_u8(o, WRITE_OK);
            put_u64(o, *req);
            put_bool(o, *found);
        }
        Msg::Query { service, req } => {
            put_u8(o, QUERY);
            put_u32(o, service.0);
            put_u64(o, *req);
        }
        Msg::QueryOk { req, answer } => {
            put_u8(o, QUERY_OK);
            put_u64(o, *req);
            put_nodes(o, &answer.instances);
            put_nodes(o, &answer.registered);
        }
        Msg::Redirect { req, leader } => {
            put_u8(o, REDIRECT);
            put_u64(o, *req);
            put_bool(o, leader.is_some());
            put_u32(o, leader.map_or(0, |n| n.0));
        }
        Msg::Push { service, instances, push_id } => {
            put_u8(o, PUSH);
            put_u32(o, service.0);
            put_nodes(o, instances);
            put_u64(o, *push_id);
        }
        Msg::PushAck { push_id } => {
            put_u8(o, PUSH_ACK);
            put_u64(o, *push_id);
        }
        Msg::WriteError { req } => {
            put_u8(o, WRITE_ERROR);
            put_u64(o, *req);
        }
    }
}

/// The fields of a message with tag `tag` (one of [`TAGS`]).
pub(super) fn get(r: &mut Reader<'_>, tag: u8) -> R<Msg> {
    Ok(match tag {
        WRITE => Msg::Write { kind: r.write()?, service: r.service()?, req: r.u64()? },
        WRITE_OK => Msg::WriteOk { req: r.u64()?, found: r.bool()? },
        QUERY => Msg::Query { service: r.service()?, req: r.u64()? },
        QUERY_OK => {
            let req = r.u64()?;
            let answer = QueryAnswer { instances: r.nodes()?, registered: r.nodes()? };
            Msg::QueryOk { req, answer: Arc::new(answer) }
        }
        REDIRECT => {
            let req = r.u64()?;
            let some = r.bool()?;
            let n = r.node()?;
            Msg::Redirect { req, leader: some.then_some(n) }
        }
        PUSH => Msg::Push { service: r.service()?, instances: r.nodes()?, push_id: r.u64()? },
        PUSH_ACK => Msg::PushAck { push_id: r.u64()? },
        WRITE_ERROR => Msg::WriteError { req: r.u64()? },
        _ => return Err(unknown_tag()),
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::assert_round_trips;
    use super::super::{HEADER_LEN, encode};
    use super::*;
    use regsim::protocol::{ServiceId, Write};
    use regsim_kernel::NodeId;

    #[test]
    fn every_variant_round_trips() {
        let nodes = |v: &[u32]| Arc::new(v.iter().copied().map(NodeId).collect::<Vec<_>>());
        let msgs = vec![
            Msg::Write { kind: Write::Register, service: ServiceId(1), req: 7 },
            Msg::WriteError { req: 7 },
            Msg::Write { kind: Write::Beat, service: ServiceId(0), req: u64::MAX },
            Msg::WriteOk { req: 3, found: false },
            Msg::Query { service: ServiceId(0), req: 44 },
            Msg::QueryOk {
                req: 44,
                answer: Arc::new(QueryAnswer { instances: nodes(&[1, 2]), registered: nodes(&[1, 2, 3]) }),
            },
            Msg::Redirect { req: 2, leader: Some(NodeId(0)) },
            Msg::Redirect { req: 2, leader: None },
            Msg::Push { service: ServiceId(0), instances: nodes(&[7, 8, 9]), push_id: 11 },
            Msg::PushAck { push_id: 11 },
        ];
        assert_round_trips(msgs.into_iter().map(regsim::protocol::Msg::Registry));
    }

    #[test]
    fn beats_are_small() {
        let mut buf = Vec::new();
        encode(
            1,
            NodeId(1),
            &regsim::protocol::Msg::Registry(Msg::Write { kind: Write::Beat, service: ServiceId(0), req: 1 }),
            &mut buf,
        );
        assert_eq!(buf.len(), HEADER_LEN + 1 + 1 + 4 + 8);
    }
}
