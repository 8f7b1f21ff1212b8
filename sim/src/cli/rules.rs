//! `regsim rules`: Prometheus rule files on regsim's evaluator (check, test, eval).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use regsim::monitor;
use regsim::{eprintln, print, println};

pub(crate) const RULES_ABOUT: &str = "Prometheus rules on regsim's evaluator (the PromQL subset in README, \"Rules\").

`regsim rules test FILE...` runs rule unit-test files in promtool's format (rule_files, evaluation_interval, \
group_eval_order, tests with interval, input_series in the expanding notation a+bxN / a-bxN / _xN / stale, \
alert_rule_test, promql_expr_test) and prints, per file, SUCCESS or FAILED with the reasons, as `promtool test \
rules` does. `regsim rules check FILE...` loads and validates rule files.

Exit codes: 0 every test passed (every file is valid); 1 a test failed; 2 bad input (a file that does not parse, \
an unknown key, an expression outside the subset: file:line:column, key path and what was expected).";

#[derive(Args)]
pub(crate) struct RulesArgs {
    #[command(subcommand)]
    command: RulesCommand,
}

#[derive(Subcommand)]
pub(crate) enum RulesCommand {
    /// Run rule unit-test files (promtool's format): 0 all pass, 1 a test failed, 2 bad input.
    Test(RulesFiles),
    /// Load and validate Prometheus rule files: 0 valid, 2 bad input.
    Check(RulesFiles),
}

#[derive(Args)]
pub(crate) struct RulesFiles {
    /// The files (YAML).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

pub(crate) fn rules_command(a: &RulesArgs) -> ExitCode {
    let (RulesCommand::Test(f) | RulesCommand::Check(f)) = &a.command;
    let testing = matches!(a.command, RulesCommand::Test(_));
    let (mut bad, mut failed) = (false, false);
    for path in &f.files {
        if testing {
            match monitor::unittest::run_file(path) {
                Ok(outcome) => {
                    print!("{}", outcome.render());
                    failed |= !outcome.passed();
                }
                Err(e) => {
                    println!("Unit Testing:  {}\n  FAILED (bad input)\n", path.display());
                    eprintln!("error: {e}");
                    bad = true;
                }
            }
        } else {
            match monitor::rulefile::load(path) {
                Ok(rf) => {
                    let rules: usize = rf.groups.iter().map(|g| g.rules.len()).sum();
                    println!("{}: ok ({} groups, {rules} rules)", path.display(), rf.groups.len());
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    bad = true;
                }
            }
        }
    }
    if bad {
        ExitCode::from(2)
    } else if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
