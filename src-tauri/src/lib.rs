//! Portway's desktop app: a thin Tauri shell over the client engine.
//!
//! - [`controller`]: the app's state and actions (Tauri-free; the window's commands and the tray call it).
//! - [`diagnostics`]: the window's "Check" (DNS, TCP, TLS, token, login) over the engine's diagnostics.
//! - [`i18n`]: the tray's and notifications' texts in English and 简体中文, and the language choice.
//! - [`profile`]: the form's data, stored without the secret; frpc.toml import/export.
//! - [`profiles`]: every profile (one per server) in profiles.json, and the migration of the old profile.json.
//! - [`keychain`]: the secret in the OS keychain (no plain-text fallback).
//! - [`tray`]: the tray's icon and menu as a pure function of the status; [`dto`]: the status in the UI's shape.
//! - [`logs`]: a tracing layer feeding the window's log view.
//! - [`memory`]: glibc's allocator kept small for the tray (few arenas, freed pages returned).
//!
//! The engines are re-exported for the end-to-end tests.

pub mod controller;
pub mod diagnostics;
pub mod dto;
pub mod i18n;
pub mod keychain;
pub mod logs;
pub mod memory;
pub mod profile;
pub mod profiles;
pub mod tray;

#[cfg(feature = "desktop")]
mod app;
#[cfg(feature = "desktop")]
pub use app::run;

pub use portway_client as client;
pub use portway_proto as proto;
pub use portway_server as server;
