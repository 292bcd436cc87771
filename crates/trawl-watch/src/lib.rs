//! Registry-side scanning for Trawl: scan every image pushed to a registry
//! once, keep the results, and match the images in use again whenever the
//! advisory database or the policy changes.
//!
//! # Brief overview
//!
//! - [`Service`] is the running service: it takes the registry's
//!   notification webhook, queues a scan per pushed image, runs the scans
//!   under leases ([`Config::workers`] at once), watches the advisory
//!   database file and the policy's files, and rescans from stored
//!   inventories (nothing is pulled) when they change. [`Service::router`]
//!   is the webhook and REST API as an [`axum::Router`], to serve with
//!   [`serve`] (every connection bounded: [`HttpLimits`]) or to mount in a
//!   server of your own. [`run`] does it all until a shutdown future
//!   completes: the `watch` binary is argument parsing around it.
//! - [`Config`] says what to watch: the registries events may name
//!   ([`WatchedRegistry`]: credentials go only there), the advisory
//!   database, the policy ([`PolicyFiles`]), the tokens, and the store.
//! - [`Store`] holds results, inventories, findings (a row per image and
//!   finding; on PostgreSQL those of shared packages stored once per package
//!   and seen through a view; indexed by id, alias, package and severity)
//!   and the job queue,
//!   on SQLite (one process, one file: the default) or PostgreSQL (many
//!   processes on many machines: jobs and rescan batches are claimed with
//!   `FOR UPDATE SKIP LOCKED` under leases), chosen by [`StoreLocation`].
//!   The [`store`] module explains leases and how a crash is charged.
//! - [`events`] reads Docker Registry 2.0 notification envelopes and decides
//!   what each event means; every field is the word of whoever pushed, and
//!   is checked as such.
//! - [`notify`] POSTs HMAC-signed JSON events (`scan.completed`,
//!   `scan.failed`, `verdict.changed`) to the configured URLs
//!   ([`Config::notify`]) from an outbox in the store, at least once, with
//!   retries.
//! - Errors are typed: [`ServiceError`], [`StoreError`].
//!
//! # Example
//!
//! A service on an SQLite store, its API mounted under `/trawl` in the
//! operator's own router, served on a loopback port:
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let db = dir.path().join("trawl.db");
//! # trawl::advisory::StoreBuilder::new().write(&db)?;
//! use trawl_watch::{Config, HttpLimits, Service, WatchedRegistry};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! let mut config = Config::new(
//!     &db,                   // a compiled advisory database (`db build`)
//!     dir.path().join("data"),
//!     "api-token",
//!     "webhook-token",
//!     vec![WatchedRegistry::new("registry.example:5000")],
//! );
//! config.workers = 2;
//! // For several processes: config.store = "postgres://watch@db.example/trawl".parse()?;
//!
//! tokio::runtime::Runtime::new()?.block_on(async {
//!     let service = Service::start(config).await?;
//!     let app = axum::Router::new().nest("/trawl", service.router());
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//!     let addr = listener.local_addr()?;
//!     let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//!     let server = tokio::spawn(trawl_watch::serve(listener, app, HttpLimits::default(), async {
//!         let _ = stopped.await;
//!     }));
//!
//!     let mut client = tokio::net::TcpStream::connect(addr).await?;
//!     client.write_all(b"GET /trawl/healthz HTTP/1.1\r\nHost: w\r\nConnection: close\r\n\r\n").await?;
//!     let mut answer = String::new();
//!     client.read_to_string(&mut answer).await?;
//!     assert!(answer.starts_with("HTTP/1.1 200"));
//!     assert!(answer.contains(r#""queued":0"#));
//!
//!     let _ = stop.send(());
//!     server.await?;
//!     service.stop().await;
//!     Ok(())
//! })
//! # }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod api;
mod config;
mod database;
pub mod events;
pub mod notify;
mod redact;
mod server;
mod service;
pub mod store;

pub use config::{
    Config, PolicyFiles, ScopedToken, WatchedRegistry, parse_duration, parse_registry,
    parse_registry_auth, parse_scoped_token_file, watched_registries,
};
pub use notify::{Notifications, NotifyTarget};
pub use redact::redact_urls;
pub use server::{HttpLimits, serve};
pub use service::{Service, ServiceError, rematch, run};
pub use store::{Scope, Store, StoreError, StoreLocation};
