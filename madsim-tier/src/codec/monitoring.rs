//! The monitoring stack's messages (`regsim::protocol::monitoring::Msg`): Prometheus' scrapes
//! and their answers (counters, or labelled samples for a gateway or a federation endpoint),
//! federation queries as selector texts, and alert batches to Alertmanager. Label sets are a
//! pair count then each name and value as a string (`u32` length, UTF-8 bytes).

use std::sync::Arc;

use regsim::monitor::{Labels, Query};
use regsim::protocol::monitoring::alertmanager::AlertMsg;
use regsim::protocol::monitoring::prometheus::FederateQuery;
use regsim::protocol::monitoring::{Exposition, Msg};

use super::{DecodeError, R, Reader, put_bool, put_len, put_str, put_u8, put_u32, put_u64, unknown_tag};

const SCRAPE: u8 = 23;
const SCRAPE_OK: u8 = 24;
const ALERTS: u8 = 25;
const EXPOSITION: u8 = 27;
const FEDERATE: u8 = 28;
/// The message tags of this protocol.
pub(super) const TAGS: &[u8] = &[SCRAPE, SCRAPE_OK, ALERTS, EXPOSITION, FEDERATE];

pub(super) fn put(o: &mut Vec<u8>, msg: &Msg) {
    match msg {
        Msg::Scrape { seq } => {
            put_u8(o, SCRAPE);
            put_u32(o, *seq);
        }
        Msg::ScrapeOk { seq, registry_requests, calls_served } => {
            put_u8(o, SCRAPE_OK);
            put_u32(o, *seq);
            put_u64(o, *registry_requests);
            put_u64(o, *calls_served);
        }
        Msg::Alerts { batch } => {
            put_u8(o, ALERTS);
            put_len(o, batch.len());
            for a in batch.iter() {
                put_labels(o, &a.labels);
                put_u64(o, a.starts_at_ms as u64);
                put_u64(o, a.ends_at_ms as u64);
            }
        }
        Msg::Exposition { seq, body } => {
            put_u8(o, EXPOSITION);
            put_u32(o, *seq);
            put_len(o, body.samples.len());
            for (labels, v, t) in &body.samples {
                put_labels(o, labels);
                put_u64(o, v.to_bits());
                put_bool(o, t.is_some());
                put_u64(o, t.unwrap_or(0) as u64);
            }
        }
        Msg::Federate { seq, query } => {
            put_u8(o, FEDERATE);
            put_u32(o, *seq);
            put_len(o, query.matchers.len());
            for m in &query.matchers {
                put_str(o, &m.text);
            }
        }
    }
}

fn put_labels(o: &mut Vec<u8>, labels: &Labels) {
    let pairs: Vec<(&str, &str)> = labels.iter().collect();
    put_len(o, pairs.len());
    for (k, v) in pairs {
        put_str(o, k);
        put_str(o, v);
    }
}

/// The fields of a message with tag `tag` (one of [`TAGS`]).
pub(super) fn get(r: &mut Reader<'_>, tag: u8) -> R<Msg> {
    Ok(match tag {
        SCRAPE => Msg::Scrape { seq: r.u32()? },
        SCRAPE_OK => Msg::ScrapeOk { seq: r.u32()?, registry_requests: r.u64()?, calls_served: r.u64()? },
        ALERTS => {
            let n = r.len(20)?;
            let mut batch = Vec::with_capacity(n);
            for _ in 0..n {
                let labels = labels(r)?;
                let starts_at_ms = r.u64()? as i64;
                let ends_at_ms = r.u64()? as i64;
                batch.push(AlertMsg { labels, starts_at_ms, ends_at_ms });
            }
            Msg::Alerts { batch: Arc::new(batch) }
        }
        EXPOSITION => {
            let seq = r.u32()?;
            let n = r.len(21)?;
            let mut samples = Vec::with_capacity(n);
            for _ in 0..n {
                let labels = labels(r)?;
                let v = f64::from_bits(r.u64()?);
                let stamped = r.bool()?;
                let t = r.u64()? as i64;
                samples.push((labels, v, stamped.then_some(t)));
            }
            Msg::Exposition { seq, body: Arc::new(Exposition { samples }) }
        }
        FEDERATE => {
            let seq = r.u32()?;
            let n = r.len(4)?;
            let mut matchers = Vec::with_capacity(n);
            for _ in 0..n {
                let text = r.string()?;
                matchers.push(Query::parse(&text).map_err(|_| DecodeError::Malformed("selector"))?);
            }
            Msg::Federate { seq, query: Arc::new(FederateQuery::new(matchers)) }
        }
        _ => return Err(unknown_tag()),
    })
}

fn labels(r: &mut Reader<'_>) -> R<Labels> {
    let pairs = r.len(8)?;
    let mut kv = Vec::with_capacity(pairs);
    for _ in 0..pairs {
        kv.push((r.string()?, r.string()?));
    }
    Ok(Labels::from_pairs(kv))
}

#[cfg(test)]
mod tests {
    use super::super::tests::assert_round_trips;
    use super::*;

    #[test]
    fn every_variant_round_trips() {
        let msgs = vec![
            Msg::Scrape { seq: 3 },
            Msg::ScrapeOk { seq: 3, registry_requests: 12, calls_served: 40 },
            Msg::Exposition {
                seq: 4,
                body: Arc::new(Exposition {
                    samples: vec![
                        (Labels::metric("up", &[("job", "api")]), 1.0, Some(15_000)),
                        (Labels::metric("x_total", &[]), f64::from_bits(0x7ff0_0000_0000_0002), None),
                    ],
                }),
            },
            Msg::Federate {
                seq: 5,
                query: Arc::new(FederateQuery::new(vec![Query::parse("{job=~\".+\"}").expect("selector")])),
            },
            Msg::Alerts {
                batch: Arc::new(vec![AlertMsg {
                    labels: Labels::metric("ALERTS", &[("alertname", "X"), ("instance", "n4")]),
                    starts_at_ms: 1_000,
                    ends_at_ms: -5,
                }]),
            },
        ];
        assert_round_trips(msgs.into_iter().map(regsim::protocol::Msg::Monitoring));
    }
}
