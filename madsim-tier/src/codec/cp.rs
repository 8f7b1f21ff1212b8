//! The CP health-check messages (`regsim::protocol::cp::Msg`): the Raft leader's probe of a
//! persistent instance and the instance's answer, each carrying the probe round.

use regsim::protocol::cp::Msg;

use super::{R, Reader, put_u8, put_u32, unknown_tag};

const PROBE: u8 = 13;
const PROBE_OK: u8 = 14;
/// The message tags of this protocol.
pub(super) const TAGS: &[u8] = &[PROBE, PROBE_OK];

pub(super) fn put(o: &mut Vec<u8>, msg: &Msg) {
    match msg {
        Msg::Probe { round } => {
            put_u8(o, PROBE);
            put_u32(o, *round);
        }
        Msg::ProbeOk { round } => {
            put_u8(o, PROBE_OK);
            put_u32(o, *round);
        }
    }
}

/// The fields of a message with tag `tag` (one of [`TAGS`]).
pub(super) fn get(r: &mut Reader<'_>, tag: u8) -> R<Msg> {
    Ok(match tag {
        PROBE => Msg::Probe { round: r.u32()? },
        PROBE_OK => Msg::ProbeOk { round: r.u32()? },
        _ => return Err(unknown_tag()),
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::assert_round_trips;
    use super::*;

    #[test]
    fn every_variant_round_trips() {
        let msgs = vec![Msg::Probe { round: 6 }, Msg::ProbeOk { round: 6 }];
        assert_round_trips(msgs.into_iter().map(regsim::protocol::Msg::Cp));
    }
}
