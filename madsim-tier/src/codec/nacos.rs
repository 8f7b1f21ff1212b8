//! The Nacos protocol's messages (`regsim::protocol::nacos::Msg`), between the servers of an
//! AP (Distro) cluster: writes forwarded to the responsible server and their answers, Distro's
//! sync, verify and pull, the membership reports and the service-status reports.

use std::sync::Arc;

use regsim::protocol::nacos::Msg;
use regsim::protocol::{InstRec, ServiceId};
use regsim_kernel::SimTime;

use super::{R, Reader, put_bool, put_len, put_u8, put_u32, put_u64, put_write, unknown_tag};

const FORWARD: u8 = 2;
const FORWARD_OK: u8 = 3;
const SYNC: u8 = 4;
const SYNC_OK: u8 = 5;
const VERIFY: u8 = 6;
const PULL: u8 = 7;
const REPORT: u8 = 8;
const REPORT_OK: u8 = 9;
const FORWARD_REJECTED: u8 = 29;
const STATUS: u8 = 31;
const STATUS_QUERY: u8 = 32;
const STATUSES: u8 = 33;
const SNAPSHOT_QUERY: u8 = 34;
const SNAPSHOT: u8 = 35;
/// The message tags of this protocol.
pub(super) const TAGS: &[u8] = &[
    FORWARD,
    FORWARD_OK,
    SYNC,
    SYNC_OK,
    VERIFY,
    PULL,
    REPORT,
    REPORT_OK,
    FORWARD_REJECTED,
    STATUS,
    STATUS_QUERY,
    STATUSES,
    SNAPSHOT_QUERY,
    SNAPSHOT,
];

pub(super) fn put(o: &mut Vec<u8>, msg: &Msg) {
    match msg {
        Msg::Forward { origin, kind, service, req } => {
            put_u8(o, FORWARD);
            put_u32(o, origin.0);
            put_write(o, *kind);
            put_u32(o, service.0);
            put_u64(o, *req);
        }
        Msg::ForwardOk { origin, req, found } => {
            put_u8(o, FORWARD_OK);
            put_u32(o, origin.0);
            put_u64(o, *req);
            put_bool(o, *found);
        }
        Msg::Sync { service, data, seq } => {
            put_u8(o, SYNC);
            put_u32(o, service.0);
            put_datum(o, data);
            put_u32(o, *seq);
        }
        Msg::SnapshotQuery { req } => {
            put_u8(o, SNAPSHOT_QUERY);
            put_u64(o, *req);
        }
        Msg::Snapshot { req, data } => {
            put_u8(o, SNAPSHOT);
            put_u64(o, *req);
            put_len(o, data.len());
            for (s, d) in data.iter() {
                put_u32(o, s.0);
                put_datum(o, d);
            }
        }
        Msg::SyncOk { service, seq } => {
            put_u8(o, SYNC_OK);
            put_u32(o, service.0);
            put_u32(o, *seq);
        }
        Msg::Verify { checksums } => {
            put_u8(o, VERIFY);
            put_checksums(o, checksums);
        }
        Msg::Pull { service } => {
            put_u8(o, PULL);
            put_u32(o, service.0);
        }
        Msg::Report { req } => {
            put_u8(o, REPORT);
            put_u64(o, *req);
        }
        Msg::ReportOk { req } => {
            put_u8(o, REPORT_OK);
            put_u64(o, *req);
        }
        Msg::ForwardRejected { origin, req } => {
            put_u8(o, FORWARD_REJECTED);
            put_u32(o, origin.0);
            put_u64(o, *req);
        }
        Msg::Status { checksums } => {
            put_u8(o, STATUS);
            put_checksums(o, checksums);
        }
        Msg::StatusQuery { service } => {
            put_u8(o, STATUS_QUERY);
            put_u32(o, service.0);
        }
        Msg::Statuses { service, flags } => {
            put_u8(o, STATUSES);
            put_u32(o, service.0);
            put_len(o, flags.len());
            for (n, h) in flags.iter() {
                put_u32(o, n.0);
                put_bool(o, *h);
            }
        }
    }
}

/// The fields of a message with tag `tag` (one of [`TAGS`]).
pub(super) fn get(r: &mut Reader<'_>, tag: u8) -> R<Msg> {
    Ok(match tag {
        FORWARD => Msg::Forward { origin: r.node()?, kind: r.write()?, service: r.service()?, req: r.u64()? },
        FORWARD_OK => Msg::ForwardOk { origin: r.node()?, req: r.u64()?, found: r.bool()? },
        SYNC => {
            let service = r.service()?;
            let data = get_datum(r)?;
            Msg::Sync { service, data, seq: r.u32()? }
        }
        SNAPSHOT_QUERY => Msg::SnapshotQuery { req: r.u64()? },
        SNAPSHOT => {
            let req = r.u64()?;
            let n = r.len(8)?;
            let data = (0..n).map(|_| Ok((r.service()?, get_datum(r)?))).collect::<R<Vec<_>>>()?;
            Msg::Snapshot { req, data: Arc::new(data) }
        }
        SYNC_OK => Msg::SyncOk { service: r.service()?, seq: r.u32()? },
        VERIFY => Msg::Verify { checksums: get_checksums(r)? },
        PULL => Msg::Pull { service: r.service()? },
        REPORT => Msg::Report { req: r.u64()? },
        REPORT_OK => Msg::ReportOk { req: r.u64()? },
        FORWARD_REJECTED => Msg::ForwardRejected { origin: r.node()?, req: r.u64()? },
        STATUS => Msg::Status { checksums: get_checksums(r)? },
        STATUS_QUERY => Msg::StatusQuery { service: r.service()? },
        STATUSES => {
            let service = r.service()?;
            let n = r.len(5)?;
            let flags = (0..n).map(|_| Ok((r.node()?, r.bool()?))).collect::<R<Vec<_>>>()?;
            Msg::Statuses { service, flags: Arc::new(flags) }
        }
        _ => return Err(unknown_tag()),
    })
}

fn put_checksums(o: &mut Vec<u8>, checksums: &[(ServiceId, u64)]) {
    put_len(o, checksums.len());
    for (s, c) in checksums {
        put_u32(o, s.0);
        put_u64(o, *c);
    }
}

fn get_checksums(r: &mut Reader<'_>) -> R<Arc<Vec<(ServiceId, u64)>>> {
    let n = r.len(12)?;
    Ok(Arc::new((0..n).map(|_| Ok((r.service()?, r.u64()?))).collect::<R<Vec<_>>>()?))
}

fn put_datum(o: &mut Vec<u8>, data: &[InstRec]) {
    put_len(o, data.len());
    for r in data {
        put_u32(o, r.instance.0);
        put_bool(o, r.healthy);
        put_u64(o, r.last_beat.0);
    }
}

fn get_datum(r: &mut Reader<'_>) -> R<regsim::protocol::Datum> {
    let n = r.len(13)?;
    let data = (0..n)
        .map(|_| Ok(InstRec { instance: r.node()?, healthy: r.bool()?, last_beat: SimTime(r.u64()?) }))
        .collect::<R<Vec<_>>>()?;
    Ok(Arc::new(data))
}

#[cfg(test)]
mod tests {
    use super::super::tests::assert_round_trips;
    use super::*;
    use regsim::protocol::Write;
    use regsim_kernel::NodeId;

    #[test]
    fn every_variant_round_trips() {
        let rec = |i, h, t| InstRec { instance: NodeId(i), healthy: h, last_beat: SimTime(t) };
        let msgs = vec![
            Msg::Forward { origin: NodeId(12), kind: Write::Beat, service: ServiceId(2), req: 5 },
            Msg::ForwardOk { origin: NodeId(12), req: 5, found: true },
            Msg::ForwardRejected { origin: NodeId(12), req: 5 },
            Msg::Sync {
                service: ServiceId(1),
                data: Arc::new(vec![rec(4, true, 10), rec(5, false, u64::MAX)]),
                seq: 9,
            },
            Msg::Sync { service: ServiceId(1), data: Arc::new(Vec::new()), seq: 0 },
            Msg::SyncOk { service: ServiceId(1), seq: 9 },
            Msg::Verify { checksums: Arc::new(vec![(ServiceId(0), 0xdead_beef), (ServiceId(4), 1)]) },
            Msg::Pull { service: ServiceId(8) },
            Msg::Report { req: 1 },
            Msg::ReportOk { req: 1 },
            Msg::Status { checksums: Arc::new(vec![(ServiceId(0), 7), (ServiceId(3), u64::MAX)]) },
            Msg::StatusQuery { service: ServiceId(3) },
            Msg::SnapshotQuery { req: 4 },
            Msg::Snapshot {
                req: 4,
                data: Arc::new(vec![
                    (ServiceId(0), Arc::new(vec![rec(4, true, 10)])),
                    (ServiceId(2), Arc::new(vec![])),
                ]),
            },
            Msg::Statuses { service: ServiceId(3), flags: Arc::new(vec![(NodeId(4), true), (NodeId(9), false)]) },
        ];
        assert_round_trips(msgs.into_iter().map(regsim::protocol::Msg::Nacos));
    }
}
