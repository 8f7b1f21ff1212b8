//! The madsim tier's rejections through the real binary (both builds): exit code 2 and a
//! message naming the file position, the key path and what was expected.

use std::process::Command;

fn regsim_madsim(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_regsim-madsim")).args(args).output().expect("run regsim-madsim");
    let text = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    (out.status.code().unwrap_or(-1), text)
}

fn scenario(name: &str) -> String {
    format!("{}/../scenarios/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn canonical_detection_scenarios_are_supported() {
    for name in ["heartbeat.toml", "nacos-crash.toml"] {
        let (code, text) = regsim_madsim(&["check", &scenario(name)]);
        assert_eq!(code, 0, "{name}: {text}");
    }
}

#[test]
fn the_madsim_tier_accepts_what_the_core_accepts() {
    let hb = scenario("heartbeat.toml");
    let cases: [&[&str]; 6] = [
        &["--set", r#"network.latency={dist="normal",mean="5ms",stddev="1ms"}"#],
        &["--set", "network.duplicate=0.01"],
        &["--set", r#"network.links=[{from="instances",to="servers",loss=0.01}]"#],
        &["--set", "faults[0].action=skew", "--set", "faults[0].offset=2s"],
        &["--set", "gateway.count=1"],
        &["--set", r#"regions=["eu","us"]"#],
    ];
    for sets in cases {
        let args: Vec<&str> = ["check", hb.as_str()].into_iter().chain(sets.iter().copied()).collect();
        let (code, text) = regsim_madsim(&args);
        assert_eq!(code, 0, "{sets:?}: {text}");
    }
    for file in ["monitoring-federation.toml", "raft-leader-isolation.toml", "cap-partition.toml"] {
        let (code, text) = regsim_madsim(&["check", &scenario(file)]);
        assert_eq!(code, 0, "{file}: {text}");
    }
    // What the core rejects, the tier rejects the same way (located in the file).
    let (code, text) = regsim_madsim(&["check", hb.as_str(), "--set", "faults[0].target=leader"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("faults[0].target"), "{text}");
}

/// `--real` (both builds can `check` it): its own limits and rejections, exit 2, located in the
/// file when the file says it.
#[test]
fn what_real_mode_cannot_express_is_rejected() {
    let hb = scenario("heartbeat.toml");
    let real = |extra: &[&str]| {
        let args: Vec<&str> =
            ["check", hb.as_str(), "--real", "--time-scale", "0.05"].into_iter().chain(extra.iter().copied()).collect();
        regsim_madsim(&args)
    };
    // The canonical heartbeat has 10,001 nodes.
    let (code, text) = real(&[]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("heartbeat.toml:") && text.contains("instances.count") && text.contains("500"), "{text}");
    let small = ["--set", "instances.count=100"];
    let (code, text) = real(&[small[0], small[1], "--set", "duration=100000s"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("duration") && text.contains("not supported by --real"), "{text}");
    // The node count includes every role (a gateway, monitoring, regions).
    let (code, text) = real(&["--set", "instances.count=250", "--set", r#"regions=["eu","us"]"#]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("500") && text.contains("not supported by --real"), "{text}");
    // What the core's network model emulates at the sender, and what the kernel's node hosts
    // do (skewed clocks, role targets), the gateway, regions and monitoring are accepted.
    let accepted: [&[&str]; 5] = [
        &["--set", "network.duplicate=0.01", "--set", "network.loss=0.01"],
        &["--set", "faults[0].action=skew", "--set", "faults[0].offset=2s"],
        &["--set", "gateway.count=1"],
        &["--set", r#"regions=["eu","us"]"#],
        &["--set", "network.links=[{from=\"instances\", to=\"servers\", loss=0.01}]"],
    ];
    for sets in accepted {
        let (code, text) = real(&small.iter().chain(sets).copied().collect::<Vec<_>>());
        assert_eq!(code, 0, "{sets:?}: {text}");
    }
    for file in ["raft-leader-isolation.toml", "monitoring.toml", "monitoring-federation.toml"] {
        let (code, text) = regsim_madsim(&["check", &scenario(file), "--real", "--time-scale", "0.05"]);
        assert_eq!(code, 0, "{file}: {text}");
    }
    // Arguments.
    for args in [
        &["check", hb.as_str(), "--real"][..],
        &["check", hb.as_str(), "--real", "--time-scale", "2"],
        &["check", hb.as_str(), "--real", "--time-scale", "0"],
        &["check", hb.as_str(), "--time-scale", "0.05"],
    ] {
        let (code, text) = regsim_madsim(args);
        assert_eq!(code, 2, "{args:?}: {text}");
        assert!(text.contains("--time-scale") || text.contains("--real"), "{args:?}: {text}");
    }
}

/// The plain build runs only `--real` and refuses `--check-determinism` with it; the madsim
/// build refuses `--real`.
#[test]
fn run_picks_the_driver_of_the_build() {
    let hb = scenario("heartbeat.toml");
    let small = ["--set", "instances.count=10", "--set", "duration=700s"];
    let args: Vec<&str> = ["run", hb.as_str(), "--real", "--time-scale", "0.05", "--check-determinism"]
        .into_iter()
        .chain(small)
        .collect();
    let (code, text) = regsim_madsim(&args);
    assert_eq!(code, 2, "{text}");
    if cfg!(madsim) {
        assert!(text.contains("--real") && text.contains("--cfg madsim"), "{text}");
    } else {
        assert!(text.contains("--check-determinism") && text.contains("not deterministic"), "{text}");
        let args: Vec<&str> = ["run", hb.as_str()].into_iter().chain(small).collect();
        let (code, text) = regsim_madsim(&args);
        assert_eq!(code, 2, "{text}");
        assert!(text.contains("only --real"), "{text}");
    }
}
