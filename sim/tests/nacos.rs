//! Validation of the AP cluster (issue 3) against ANCHORS.md and the protocol's own bounds.

mod common;

use common::scenario;
use regsim::run::{RunOutput, run};

fn go(file: &str, sets: &[&str]) -> RunOutput {
    common::run_ok(file, sets)
}

/// ANCHORS: unhealthy 10-20 s and deleted 25-35 s after the crash (15-20 / 30-35 s after the
/// last beat, which is 0-5 s before the crash). Tolerance: + 0.05 s for the network (a beat
/// in flight at the crash, up to 10 ms, and the proxy hop). Every crashed instance is
/// detected and nothing live is evicted. Replication follows deletion by the 2 s Distro sync
/// delay (+ network).
#[test]
fn nacos_crash_reproduces_the_anchor_windows() {
    let out = go("nacos-crash.toml", &[]);
    let r = &out.report;
    // Five waves of 8 random picks; a pick may hit an instance already down (a no-op).
    let crashed = *r.faults.get("crashed").expect("crashes");
    assert!((35..=40).contains(&crashed), "{crashed}");
    let u = &r.detection.unhealthy;
    let d = &r.detection.deleted;
    assert_eq!((u.summary.count, u.missed), (crashed, 0));
    assert!(u.summary.min_s >= 10.0 && u.summary.max_s <= 20.05, "unhealthy {:?}", u.summary);
    assert!(d.summary.min_s >= 25.0 && d.summary.max_s <= 35.05, "deleted {:?}", d.summary);
    assert_eq!(r.false_positives.count, 0);
    // The report points at the crash whose views caught up last: its stage is the table's max.
    let slow = r.slowest_crash.as_ref().expect("a slowest crash");
    let views = slow.stages.iter().find(|s| s.0 == "views_updated").and_then(|s| s.1).expect("views updated");
    let max = r.detection.views_updated.as_ref().expect("consumers").summary.max_s;
    assert!((views - max).abs() < 1e-6, "{views} vs {max}");
    assert!(slow.instance.starts_with("instances["), "{}", slow.instance);
    for e in &out.analyzer.detection.episodes {
        let (del, rep) = (e.deleted.expect("deleted"), e.replicated.expect("replicated"));
        let lag = (rep - del).as_secs_f64();
        assert!((0.0..=2.05).contains(&lag), "replicated {lag} s after deletion");
    }
}

/// With push on, a consumer's view drops a dead instance about 1 s (the push debounce) after
/// the change reaches its server: at once for consumers subscribed to the responsible server,
/// after the responsible server's next status report for the others (every 5 s; a Distro sync
/// does not carry the flag). So most views update 1-6 s after the unhealthy mark (+ 0.1 s of
/// network). A consumer whose subscription lapsed (it polled another server more than 10 s
/// ago) gets no push, and its next poll only refreshes the subscription if a push came since
/// the last one (`HostReactor.UpdateTask` -> `refreshOnly`): it waits for the poll after, up
/// to two poll intervals. With one server there is no other server: 1-1.1 s. With push off,
/// views wait for the 3 s poll, so they lag more.
#[test]
fn views_follow_the_registry_about_a_second_later_with_push() {
    let lag = |out: &RunOutput| -> Vec<f64> {
        let eps = &out.analyzer.detection.episodes;
        eps.iter()
            .map(|e| (e.views_updated.expect("views updated") - e.unhealthy.expect("unhealthy")).as_secs_f64())
            .collect()
    };
    let three = lag(&go("nacos-crash.toml", &[]));
    let pushed = three.iter().filter(|x| (1.0..=6.1).contains(*x)).count();
    assert!(pushed * 10 >= three.len() * 8, "3 servers, most within a report and a debounce: {three:?}");
    assert!(three.iter().all(|x| (1.0..=21.1).contains(x)), "3 servers: {three:?}");
    let one = lag(&go("nacos-crash.toml", &["registry.servers=1"]));
    assert!(one.iter().all(|x| (1.0..=1.1).contains(x)), "1 server: {one:?}");
    let polled = lag(&go("nacos-crash.toml", &["registry.push.enabled=false"]));
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(mean(&polled) > mean(&three) + 0.5, "polling {} vs push {}", mean(&polled), mean(&three));
    assert!(
        polled.iter().all(|x| *x <= 5.1 + 3.0 + 3.0),
        "poll lag beyond report + poll interval + timeout: {polled:?}"
    );
}

/// Traffic stops reaching a dead instance no later than the consumers' views drop it (plus one
/// request timeout in flight).
#[test]
fn traffic_stops_when_views_update() {
    let out = go("nacos-crash.toml", &[]);
    for e in &out.analyzer.detection.episodes {
        let (Some(last), Some(views)) = (e.last_call, e.views_updated) else { continue };
        assert!(last <= views, "request sent to instance {} after every view dropped it", e.instance);
    }
}

/// Without faults on a lossless network nothing is ever evicted, and every register and beat
/// succeeds.
#[test]
fn no_faults_no_evictions() {
    let out = go("nacos-crash.toml", &["faults=[]"]);
    let r = &out.report;
    assert_eq!(r.false_positives.count, 0);
    assert_eq!(r.detection.unhealthy.summary.count, 0);
    for kind in ["register", "beat", "query"] {
        let v = serde_json::to_value(&r.availability.overall).expect("json");
        assert_eq!(v[kind]["fraction"], 1.0, "{kind}: {}", v[kind]);
    }
}

/// After the heal everything converges within the bound the protocol implies: the isolated
/// server hears a report within report_interval x (servers - 1) = 4 s, evicted instances
/// re-register at their next beat (5 s + 3 s request timeout), the change is synced after 2 s
/// and verified within 5 s, and views follow by push (1 s) or at worst the 10 s poll:
/// 4 + 8 + 2 + 5 + 10 = 29 s. Both sides stayed available (AP): queries always, and most beats
/// and calls, succeeded on both sides during the partition (the cut-off side loses some beats
/// until its server marks the others DOWN, ~16 s, because it still forwards them to the
/// unreachable responsible server; measured 0.81 with seed 1, so the floor is 0.7), and every
/// eviction is blamed on the partition.
#[test]
fn partition_heals_and_converges_within_the_protocol_bound() {
    let out = go("nacos-partition.toml", &[]);
    let r = &out.report;
    assert_eq!(r.convergence.len(), 1);
    let after = r.convergence[0].converged_after_s.expect("converged before the end");
    // Distro syncs and proxied beats cut off during the 60 s partition are retransmitted
    // (TCP) and land up to one RTO after the heal: at most 60 s + 200 ms (the RTO doubles
    // from 200 ms). Distro applies a sync without a version check
    // (`DistroConsistencyServiceImpl.processData`), so a late one can undo a repair. After
    // the last of them, the 29 s this test allowed when every message was a datagram.
    assert!(after <= 60.2 + 29.0, "converged {after} s after the heal");
    assert!(r.false_positives.count > 0);
    assert_eq!(r.false_positives.causes.keys().map(|c| format!("{c:?}")).collect::<Vec<_>>(), vec!["Partition"]);
    let sides = serde_json::to_value(&r.availability.by_side).expect("json");
    for side in ["minority (1 of 3 servers)", "majority (2 of 3 servers)"] {
        assert_eq!(sides[side]["query"]["fraction"], 1.0, "{side} queries");
        for kind in ["beat", "call"] {
            let f = sides[side][kind]["fraction"].as_f64().expect("fraction");
            assert!(f > 0.7, "{side} {kind} availability {f}");
        }
    }
    let st = r.staleness.as_ref().expect("staleness");
    assert!(st.max_fraction_wrong > 0.0 && st.worst_wrong_duration_s >= 10.0, "{st:?}");
}

/// False positives rise with packet loss and are attributed to it (on TCP, 10 % loss evicts
/// nobody: seed 1 gives 0, 0, 55, 314 and 1030 over 600 s at 0, 10, 20, 30 and 40 %).
#[test]
fn false_positives_rise_with_loss() {
    let fps: Vec<u64> = ["0", "0.2", "0.4"]
        .iter()
        .map(|l| go("nacos-loss.toml", &[&format!("network.loss={l}"), "duration=600s"]).report.false_positives.count)
        .collect();
    assert_eq!(fps[0], 0);
    assert!(fps[0] < fps[1] && fps[1] < fps[2], "{fps:?}");
}

/// The same lossy cluster with Nacos' HTTP on TCP (the default) and on datagrams: TCP turns a
/// lost packet into a retransmission 200 ms later, datagrams into a lost request (a 3 s wait
/// and a failover), so at 10 % loss TCP has far fewer wrongful evictions (measured with seed 1
/// over 600 s: 0 or 1 against 38; at 30 %, about 300 against 978, when handshakes fail too).
#[test]
fn tcp_absorbs_the_loss_that_evicts_instances_over_datagrams() {
    let fps = |sets: &[&str]| {
        let mut all = vec!["network.loss=0.1", "duration=600s"];
        all.extend_from_slice(sets);
        go("nacos-loss.toml", &all).report.false_positives.count
    };
    let tcp = fps(&[]);
    let udp = fps(&["network.transport.registry=datagram", "network.transport.servers=datagram"]);
    assert!(tcp * 10 < udp, "tcp {tcp}, datagram {udp}");
}

/// Same seed, same bytes; with consumers, pushes and a partition in play.
#[test]
fn cluster_runs_are_deterministic() {
    let s = scenario("nacos-partition.toml", &[]);
    let a = run(&s, 9).expect("runs");
    let b = run(&s, 9).expect("runs");
    let ra = regsim::report::render(&a.report, &a.analyzer).expect("renders");
    let rb = regsim::report::render(&b.report, &b.analyzer).expect("renders");
    assert_eq!(ra, rb);
    assert_ne!(a.report.digest, run(&s, 10).expect("runs").report.digest);
}

/// A restarted server loads a snapshot from a peer before anything else (`DistroLoadDataTask`;
/// one round trip, 2-20 ms here) instead of waiting for the responsible server's next checksum
/// round (up to 5 s) and its pulls, so consumers polling it keep right views. Server 1 crashes
/// for 5 s every 30 s from 62 s, so it restarts 2 s after a checksum round (server 0 stays responsible for the service: 1092918732 % 2 is
/// 0 too); 20 consumers poll every second (push off), a third of their polls going to server 1.
/// Tolerance: after the start (30 s), no sampled view is ever wrong and nothing is evicted.
/// (When the responsible server restarts, responsibility moves and the new one, whose last-beat
/// times come from old syncs, marks and deletes live instances: see `nacos-crash`-style runs.)
#[test]
fn a_restarted_server_serves_fresh_lists() {
    let text = r#"name = "restart"
seed = 4
duration = "300s"
[network]
latency = { dist = "uniform", min = "1ms", max = "10ms" }
[registry]
servers = 3
[registry.push]
enabled = false
[instances]
count = 30
start_spread = "20s"
[consumers]
count = 20
poll_interval = "1s"
[[faults]]
at = "62s"
every = "30s"
action = "crash"
target = "servers[1]"
duration = "5s"
"#;
    let s = regsim::scenario::load_str("restart.toml", text, &[]).expect("valid");
    let out = run(&s, s.seed).expect("runs");
    let r = &out.report;
    assert!(*r.faults.get("restarted").expect("restarts") >= 7, "{:?}", r.faults);
    let wrong: Vec<(f64, f64)> = (out.analyzer.staleness.series.iter())
        .filter(|(t, f)| t.as_secs_f64() >= 30.0 && *f > 0.0)
        .map(|(t, f)| (t.as_secs_f64(), *f))
        .collect();
    assert!(wrong.is_empty(), "views wrong after the start: {wrong:?}");
    assert_eq!(r.false_positives.count, 0);
}
