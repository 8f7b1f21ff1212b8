//! Scenario files: schema (serde), loading with overrides and located errors, validation, and
//! building a world from a scenario.

pub mod build;
pub mod load;
pub mod regions;
pub mod roles;
pub mod schema;

pub use build::{Built, Layout, NodeSpec, build, layout};
pub use load::{Override, ScenarioError, load, load_str, load_with, read_input, table_with_overrides};
pub use schema::Scenario;
