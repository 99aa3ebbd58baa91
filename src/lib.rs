//! hookgate: a reverse-proxy authentication gateway for inbound webhooks.
//!
//! External systems POST to `/i/{trigger_id}`; the gateway checks the API key or
//! Basic credentials against the auth methods attached to that trigger, strips them,
//! and forwards the request to the upstream. A separate admin port manages methods
//! and triggers, keeps the audit trail, and serves health and metrics.
//!
//! Layout:
//! - [`app`] assembles and stops a running gateway; `main` only parses the CLI.
//! - [`config`] turns the TOML file and environment into typed [`config::Settings`].
//! - [`listener`] and [`tls`] accept connections on both ports; [`shutdown`] handles
//!   signals.
//! - [`proxy`] is the public pipeline; [`error`] its one error-to-response mapping.
//! - [`auth`] decides from headers and a [`snapshot::TriggerSnapshot`]; its
//!   submodules parse credentials, run argon2id and count failures.
//! - [`cache`] holds trigger snapshots; [`cluster`] links instances through Redis.
//! - [`store`] holds all SQL; [`purge`] runs the purge timer.
//! - [`admin`] is the admin API; [`health`] answers readiness on both ports.
//! - [`secret`] holds secrets as types; [`model`] the shared domain types;
//!   [`telemetry`] logs and metrics.

pub mod admin;
pub mod app;
pub mod auth;
pub mod cache;
pub mod cluster;
pub mod config;
pub mod error;
pub mod health;
pub mod listener;
pub mod model;
pub mod proxy;
pub mod purge;
pub mod secret;
pub mod shutdown;
pub mod snapshot;
pub mod store;
pub mod telemetry;
pub mod tls;

pub use app::{Gateway, StartOptions, start};
