//! regsim's madsim tier: the core's sans-IO actors, observations, metrics and reports, driven
//! by a second, independent simulator ([madsim](https://github.com/madsim-rs/madsim) 0.2.34).
//!
//! It exists to cross-check the core engine's results, to prove the protocols are really
//! sans-IO (the same actor code runs on another runtime), and as the path to real sockets.
//! The simulator is compiled only with `RUSTFLAGS="--cfg madsim"` (see README, "madsim tier");
//! `support` (what the tier can run, the KS statistic) is compiled in both builds.
//!
//! The plain build (no `--cfg madsim`) carries `--real` instead: the same actors on tokio with
//! real UDP sockets on 127.0.0.1 and scaled wall-clock time ([`real`], wire format in [`codec`]).

pub mod codec;
pub mod real;
pub mod support;
pub mod timers;

#[cfg(madsim)]
pub mod driver;

#[cfg(madsim)]
pub use driver::run;
