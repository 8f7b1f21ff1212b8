//! The application's messages (`regsim::protocol::clients::Msg`, the node-level `Msg::App`):
//! a consumer's call to an instance (directly or through the gateway), its success, and the
//! gateway's failure answer with its HTTP status.

use regsim::protocol::clients::Msg;

use super::{DecodeError, R, Reader, put_u8, put_u32, put_u64, unknown_tag};

const CALL: u8 = 17;
const CALL_OK: u8 = 18;
const CALL_FAILED: u8 = 26;
/// The message tags of this protocol.
pub(super) const TAGS: &[u8] = &[CALL, CALL_OK, CALL_FAILED];

pub(super) fn put(o: &mut Vec<u8>, msg: &Msg) {
    match msg {
        Msg::Call { req } => {
            put_u8(o, CALL);
            put_u64(o, *req);
        }
        Msg::CallOk { req } => {
            put_u8(o, CALL_OK);
            put_u64(o, *req);
        }
        Msg::CallFailed { req, code } => {
            put_u8(o, CALL_FAILED);
            put_u64(o, *req);
            put_u32(o, u32::from(*code));
        }
    }
}

/// The fields of a message with tag `tag` (one of [`TAGS`]).
pub(super) fn get(r: &mut Reader<'_>, tag: u8) -> R<Msg> {
    Ok(match tag {
        CALL => Msg::Call { req: r.u64()? },
        CALL_OK => Msg::CallOk { req: r.u64()? },
        CALL_FAILED => {
            let req = r.u64()?;
            let code = u16::try_from(r.u32()?).map_err(|_| DecodeError::Malformed("status code"))?;
            Msg::CallFailed { req, code }
        }
        _ => return Err(unknown_tag()),
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::assert_round_trips;
    use super::*;

    #[test]
    fn every_variant_round_trips() {
        let msgs = vec![Msg::Call { req: 100 }, Msg::CallOk { req: 100 }, Msg::CallFailed { req: 9, code: 503 }];
        assert_round_trips(msgs.into_iter().map(regsim::protocol::Msg::App));
    }
}
