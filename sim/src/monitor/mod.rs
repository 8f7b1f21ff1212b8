//! Prometheus-style monitoring as pure code: a time-series store, a PromQL subset evaluator,
//! rule files, rule groups with Prometheus's alert state machine, and promtool-style rule unit
//! tests (`regsim rules test`).
//!
//! Model: issue 9 puts monitoring in the loop (scraping, rule evaluation, federation,
//! Alertmanager). The simulation actors that scrape and evaluate live in `protocol` and use this
//! module as a library, the way the other actors use `balance`: nothing here knows about the
//! event queue, time is plain milliseconds, and every output is ordered by label set
//! (`BTreeMap`), never by hash order. Semantics follow Prometheus 2.x, with promtool 2.x as the
//! oracle in the tests (ANCHORS.md, "Monitoring").
//!
//! Files, bottom up: `labels` (series identity), `store` (samples, staleness, lookback),
//! `query` (parsing with `promql-parser` and the subset check), `eval` (instant queries),
//! `functions`, `binop`, `aggregate`, `duration` (Prometheus durations), `template`
//! (`{{ $labels.x }}` / `{{ $value }}` only), `rulefile` (rule YAML), `alerting` (the alert
//! state machine), `group` (rule groups: health, errors, quarantine, recording),
//! `series_notation` (promtool's `a+bxN` input notation) and `unittest` (promtool's test format).

pub mod aggregate;
pub mod alerting;
pub mod binop;
pub mod duration;
pub mod eval;
pub mod federate;
pub mod functions;
pub mod group;
pub mod histogram;
pub mod labels;
pub mod openmetrics;
pub mod query;
pub mod rulefile;
pub mod series_notation;
pub mod store;
pub mod template;
pub mod unittest;
pub mod value;

pub use eval::{Element, EvalError, Value, Vector, instant_query};
pub use labels::Labels;
pub use query::Query;
pub use store::{Sample, Store};
