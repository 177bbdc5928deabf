//! Portway desktop app (grows in src-tauri/); for now it re-exports the engines for the end-to-end tests.
pub use portway_client as client;
pub use portway_proto as proto;
pub use portway_server as server;
