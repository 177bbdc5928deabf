//! The app's state and actions, free of Tauri: the window's commands and the tray both call these, so the tray's
//! toggle and the window's button take the same code path. Tested directly in tests/desktop_controller.rs.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use portway_client::oidc::TokenInfo;
use portway_client::{ClientHandle, ConnState, Secret, SecretSource, Status};
use serde::Serialize;
use tokio::sync::watch;

use crate::keychain::{Keychain, KeychainError};
use crate::logs::LogBuffer;
use crate::profile::Profile;

/// What an import brought over, and what it left out (one `"proxy NAME: reason"` line each).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Imported {
    /// The saved profile.
    pub profile: Profile,
    /// Proxies and visitors not brought over, with the reason.
    pub skipped: Vec<String>,
}

/// The keychain account the profile's secret is stored under.
pub const ACCOUNT: &str = "profile:default";

/// An error for the UI: a stable code and a message a person can act on (never a secret, never internals).
#[derive(Debug, Clone, Serialize, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    /// Stable code (docs/ui-contract.md).
    pub code: &'static str,
    /// What went wrong and what to do.
    pub message: String,
}

impl AppError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        AppError { code, message: message.into() }
    }
}

impl From<KeychainError> for AppError {
    fn from(e: KeychainError) -> Self {
        let code = if matches!(e, KeychainError::Unavailable(_)) { "keychain_unavailable" } else { "io" };
        AppError::new(code, e.to_string())
    }
}

/// `KeychainStatus` of the contract.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct KeychainStatus {
    /// Whether a keychain answers.
    pub available: bool,
    /// How to fix it, when not.
    pub message: Option<String>,
}

/// The desktop app's controller.
pub struct Controller {
    dir: PathBuf,
    profile: Mutex<Profile>,
    engine: tokio::sync::Mutex<Option<ClientHandle>>,
    status: watch::Sender<Status>,
    /// Logs shown in the window.
    pub logs: LogBuffer,
}

impl Controller {
    /// Loads the profile from `dir` (the OS config directory, or `PORTWAY_CONFIG_DIR`).
    pub fn load(dir: &Path, logs: LogBuffer) -> Controller {
        let profile: Profile = std::fs::read_to_string(dir.join("profile.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let status = watch::channel(Status::new(profile.proxies.iter().map(|p| p.name.clone()))).0;
        Controller {
            dir: dir.to_path_buf(),
            profile: Mutex::new(profile),
            engine: tokio::sync::Mutex::new(None),
            status,
            logs,
        }
    }

    /// The default config directory.
    pub fn default_dir() -> PathBuf {
        if let Some(d) = std::env::var_os("PORTWAY_CONFIG_DIR") {
            return PathBuf::from(d);
        }
        dirs::config_dir().unwrap_or_else(std::env::temp_dir).join("portway")
    }

    /// The profile file's path.
    pub fn profile_path(&self) -> PathBuf {
        self.dir.join("profile.json")
    }

    fn keychain() -> Keychain {
        Keychain::new(ACCOUNT)
    }

    /// The profile, with `hasSecret` filled from the keychain.
    pub fn profile(&self) -> Profile {
        let mut p = self.profile.lock().map(|p| p.clone()).unwrap_or_default();
        p.auth.has_secret = matches!(Self::keychain().get(), Ok(Some(_)));
        p
    }

    /// Validates and stores the profile (never the secret).
    pub fn save_profile(&self, mut p: Profile) -> Result<Profile, AppError> {
        p.validate().map_err(|e| AppError::new("invalid_input", e.to_string()))?;
        p.auth.has_secret = false;
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| AppError::new("io", format!("cannot create {}: {e}", self.dir.display())))?;
        let text = serde_json::to_string_pretty(&p).map_err(|e| AppError::new("io", e.to_string()))?;
        let path = self.profile_path();
        std::fs::write(&path, text)
            .map_err(|e| AppError::new("io", format!("cannot write {}: {e}", path.display())))?;
        if let Ok(mut cur) = self.profile.lock() {
            *cur = p;
        }
        Ok(self.profile())
    }

    /// Stores the secret in the keychain.
    pub fn set_secret(&self, secret: &str) -> Result<(), AppError> {
        if secret.is_empty() {
            return Err(AppError::new("invalid_input", "the secret is empty"));
        }
        Ok(Self::keychain().set(secret)?)
    }

    /// Removes the secret from the keychain.
    pub fn clear_secret(&self) -> Result<(), AppError> {
        Ok(Self::keychain().delete()?)
    }

    /// Whether the keychain can be used.
    pub fn keychain_status(&self) -> KeychainStatus {
        match Keychain::probe() {
            Ok(()) => KeychainStatus { available: true, message: None },
            Err(e) => KeychainStatus { available: false, message: Some(e.to_string()) },
        }
    }

    /// The current status.
    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// Every status change.
    pub fn watch(&self) -> watch::Receiver<Status> {
        self.status.subscribe()
    }

    /// Whether an engine runs (connecting, connected or retrying).
    pub async fn is_running(&self) -> bool {
        self.engine.lock().await.is_some()
    }

    /// Starts the engine with the stored profile and the keychain's secret.
    pub async fn connect(&self) -> Result<(), AppError> {
        let mut engine = self.engine.lock().await;
        if engine.is_some() {
            return Err(AppError::new("already_connected", "Portway is already connected or connecting"));
        }
        let profile = self.profile();
        profile.validate().map_err(|e| AppError::new("invalid_input", e.to_string()))?;
        let secret = Self::keychain().get()?.ok_or_else(|| {
            AppError::new("no_secret", "no secret is stored: enter the client secret (or token) and save it first")
        })?;
        let mut cfg = profile.to_client_config();
        if cfg.auth.method == "token" {
            cfg.auth.token.clear();
        }
        let handle = portway_client::start(cfg, SecretSource::Value(Secret::new(secret)));
        // Forward the engine's status to the app's status until the engine is replaced.
        let mut rx = handle.watch();
        let tx = self.status.clone();
        tokio::spawn(async move {
            loop {
                let s = rx.borrow_and_update().clone();
                tx.send_replace(s);
                if rx.changed().await.is_err() {
                    break;
                }
            }
        });
        *engine = Some(handle);
        Ok(())
    }

    /// Stops the engine (also cancels connecting and retrying).
    pub async fn disconnect(&self) -> Result<(), AppError> {
        let handle = self.engine.lock().await.take();
        let Some(h) = handle else { return Err(AppError::new("not_connected", "Portway is not connected")) };
        let _ = h.stop().await;
        let names = self.profile().proxies.into_iter().filter(|p| p.enabled).map(|p| p.name);
        self.status.send_replace(Status::new(names));
        Ok(())
    }

    /// The tray's toggle: the same connect/disconnect the window's button calls.
    pub async fn toggle(&self) -> Result<(), AppError> {
        if self.is_running().await {
            self.disconnect().await
        } else {
            self.connect().await
        }
    }

    /// Fetches a token with `profile` and `secret` (or the stored secret) and describes it.
    pub async fn test_sign_in(&self, profile: Profile, secret: Option<String>) -> Result<TokenInfo, AppError> {
        if profile.auth.method != "oidc" {
            return Err(AppError::new("invalid_input", "Test sign-in needs the OIDC method"));
        }
        let secret = match secret.filter(|s| !s.is_empty()) {
            Some(s) => s,
            None => Self::keychain()
                .get()?
                .ok_or_else(|| AppError::new("no_secret", "enter the client secret to test the sign-in"))?,
        };
        let cfg = profile.to_client_config();
        portway_client::oidc::test_sign_in(&cfg.auth.oidc, Secret::new(secret))
            .await
            .map_err(|e| AppError::new("sign_in_failed", e.to_string()))
    }

    /// Imports frpc config text (TOML, YAML, JSON or legacy INI): the profile is saved, the secret moved into the
    /// keychain (never into the file); proxies and visitors that could not be brought over are listed with why.
    pub fn import_frpc(&self, text: &str) -> Result<Imported, AppError> {
        let (p, secret, skipped) = Profile::from_frpc_salvage(text).map_err(|e| AppError::new("import_failed", e))?;
        if let Some(s) = secret {
            Self::keychain().set(&s).map_err(|e| {
                AppError::new(
                    if matches!(e, KeychainError::Unavailable(_)) { "keychain_unavailable" } else { "import_failed" },
                    format!("the file's secret could not be moved into the keychain, so nothing was imported: {e}"),
                )
            })?;
        }
        Ok(Imported { profile: self.save_profile(p)?, skipped })
    }

    /// frpc.toml text of the profile, without the secret.
    pub fn export_frpc(&self) -> String {
        self.profile().to_frpc()
    }

    /// Whether the state is a connected one (for notifications).
    pub fn connected(s: &Status) -> bool {
        matches!(s.conn, ConnState::Connected { .. })
    }
}
