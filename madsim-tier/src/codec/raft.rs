//! The Raft protocol's messages (`regsim::protocol::raft::Msg`), between the servers of a CP
//! cluster: (pre-)vote requests and votes, and `AppendEntries` with its answer. A log entry is
//! its term, then a command tag (noop, register, health) and the command's fields.

use std::sync::Arc;

use regsim::protocol::raft::{Append, Cmd, Entry, Msg};

use super::{DecodeError, R, Reader, put_bool, put_len, put_u8, put_u32, put_u64, unknown_tag};

const REQUEST_VOTE: u8 = 19;
const VOTE: u8 = 20;
const APPEND_ENTRIES: u8 = 21;
const APPEND_OK: u8 = 22;
/// The message tags of this protocol.
pub(super) const TAGS: &[u8] = &[REQUEST_VOTE, VOTE, APPEND_ENTRIES, APPEND_OK];

pub(super) fn put(o: &mut Vec<u8>, msg: &Msg) {
    match msg {
        Msg::RequestVote { term, pre, last_index, last_term } => {
            put_u8(o, REQUEST_VOTE);
            put_u64(o, *term);
            put_bool(o, *pre);
            put_u32(o, *last_index);
            put_u32(o, *last_term);
        }
        Msg::Vote { term, pre, granted } => {
            put_u8(o, VOTE);
            put_u64(o, *term);
            put_bool(o, *pre);
            put_bool(o, *granted);
        }
        Msg::AppendEntries { term, body } => {
            put_u8(o, APPEND_ENTRIES);
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
                }
            }
            put_u32(o, body.commit);
            put_u32(o, body.round);
        }
        Msg::AppendOk { term, ok, index, round } => {
            put_u8(o, APPEND_OK);
            put_u64(o, *term);
            put_bool(o, *ok);
            put_u32(o, *index);
            put_u32(o, *round);
        }
    }
}

/// The fields of a message with tag `tag` (one of [`TAGS`]).
pub(super) fn get(r: &mut Reader<'_>, tag: u8) -> R<Msg> {
    Ok(match tag {
        REQUEST_VOTE => Msg::RequestVote { term: r.u64()?, pre: r.bool()?, last_index: r.u32()?, last_term: r.u32()? },
        VOTE => Msg::Vote { term: r.u64()?, pre: r.bool()?, granted: r.bool()? },
        APPEND_ENTRIES => {
            let term = r.u64()?;
            let prev_index = r.u32()?;
            let prev_term = r.u64()?;
            let n = r.len(9)?;
            let entries = (0..n).map(|_| entry(r)).collect::<R<Vec<_>>>()?;
            let body = Append { prev_index, prev_term, entries, commit: r.u32()?, round: r.u32()? };
            Msg::AppendEntries { term, body: Arc::new(body) }
        }
        APPEND_OK => Msg::AppendOk { term: r.u64()?, ok: r.bool()?, index: r.u32()?, round: r.u32()? },
        _ => return Err(unknown_tag()),
    })
}

/// One log entry of an `AppendEntries`.
fn entry(r: &mut Reader<'_>) -> R<Entry> {
    let term = r.u64()?;
    let cmd = match r.u8()? {
        0 => Cmd::Noop,
        1 => Cmd::Register { service: r.service()?, instance: r.node()? },
        _ => return Err(DecodeError::Malformed("unknown raft command")),
    };
    Ok(Entry { term, cmd })
}

#[cfg(test)]
mod tests {
    use super::super::tests::assert_round_trips;
    use super::*;
    use regsim::protocol::ServiceId;
    use regsim_kernel::NodeId;

    #[test]
    fn every_variant_round_trips() {
        let entries = vec![
            Entry { term: 1, cmd: Cmd::Noop },
            Entry { term: 2, cmd: Cmd::Register { service: ServiceId(3), instance: NodeId(9) } },
        ];
        let msgs = vec![
            Msg::RequestVote { term: 4, pre: true, last_index: 10, last_term: 3 },
            Msg::Vote { term: 4, pre: false, granted: true },
            Msg::AppendEntries {
                term: 5,
                body: Arc::new(Append { prev_index: 2, prev_term: 1, entries, commit: 2, round: 77 }),
            },
            Msg::AppendOk { term: 5, ok: true, index: 5, round: 77 },
        ];
        assert_round_trips(msgs.into_iter().map(regsim::protocol::Msg::Raft));
    }
}
