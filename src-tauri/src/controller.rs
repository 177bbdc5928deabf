//! The app's state and actions, free of Tauri: the window's commands and the tray both call these, so the tray's
//! toggle and the window's button take the same code path. Tested directly in tests/desktop_controller.rs.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use portway_client::config::ClientConfig;
use portway_client::oidc::TokenInfo;
use portway_client::{ClientHandle, ConnState, Secret, SecretSource, Status};
use serde::Serialize;
use tokio::sync::watch;

use crate::dto::StatusDto;
use crate::keychain::{Keychain, KeychainError};
use crate::logs::LogBuffer;
use crate::profile::{Profile, ProxyDef};

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
    /// A saved change (server, auth, secret) that the running engine only applies after a reconnect.
    reconnect_needed: AtomicBool,
    /// Logs shown in the window.
    pub logs: LogBuffer,
}

impl Controller {
    /// Loads the profile from `dir` (the OS config directory, or `PORTWAY_CONFIG_DIR`).
    pub fn load(dir: &Path, logs: LogBuffer) -> Controller {
        let profile = std::fs::read_to_string(dir.join("profile.json"))
            .ok()
            .and_then(|t| Profile::from_stored_json(&t))
            .unwrap_or_default();
        let status = watch::channel(Status::new(profile.proxies.iter().map(|p| p.name.clone()))).0;
        Controller {
            dir: dir.to_path_buf(),
            profile: Mutex::new(profile),
            engine: tokio::sync::Mutex::new(None),
            status,
            reconnect_needed: AtomicBool::new(false),
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

    /// The profile, with `hasSecret` and each proxy's `hasHttpPassword` filled from the keychain (they are never
    /// stored: a stored flag could disagree with the keychain).
    pub fn profile(&self) -> Profile {
        let mut p = self.profile.lock().map(|p| p.clone()).unwrap_or_default();
        p.auth.has_secret = matches!(Self::keychain().get(), Ok(Some(_)));
        for x in &mut p.proxies {
            x.has_http_password =
                x.uses_basic_auth() && matches!(Keychain::new(&ProxyDef::password_account(&x.name)).get(), Ok(Some(_)));
        }
        p
    }

    /// Validates and stores the profile (never a secret). While an engine runs, the proxy changes apply at once
    /// through the engine's reload (only the added, changed or removed proxies are touched; the others keep their
    /// connections); other changes (server, auth) set [`Self::reconnect_needed`].
    pub async fn save_profile(&self, p: Profile) -> Result<Profile, AppError> {
        p.validate().map_err(|e| AppError::new("invalid_input", e.to_string()))?;
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| AppError::new("io", format!("cannot create {}: {e}", self.dir.display())))?;
        let path = self.profile_path();
        std::fs::write(&path, p.to_stored_json())
            .map_err(|e| AppError::new("io", format!("cannot write {}: {e}", path.display())))?;
        let old = self.profile.lock().map(|mut cur| std::mem::replace(&mut *cur, p.clone())).unwrap_or_default();
        // A removed proxy's password leaves the keychain with it.
        for gone in old.proxies.iter().filter(|o| !p.proxies.iter().any(|n| n.name == o.name)) {
            let _ = Keychain::new(&ProxyDef::password_account(&gone.name)).delete();
        }
        self.apply_live().await;
        Ok(self.profile())
    }

    /// Applies the stored profile to the running engine, if any (see [`Self::save_profile`]).
    async fn apply_live(&self) {
        let engine = self.engine.lock().await;
        let Some(h) = engine.as_ref() else { return };
        let Ok(cfg) = self.engine_config(&self.profile()) else {
            self.mark_reconnect();
            return;
        };
        let out = h.reload(cfg);
        if out.other_settings_changed {
            self.mark_reconnect();
        }
    }

    fn mark_reconnect(&self) {
        self.reconnect_needed.store(true, Ordering::SeqCst);
        // Tell the window (the status event carries the flag).
        self.status.send_modify(|_| {});
    }

    /// Whether a saved change waits for a reconnect (server address, auth, secret).
    pub fn reconnect_needed(&self) -> bool {
        self.reconnect_needed.load(Ordering::SeqCst)
    }

    /// The status as the window sees it.
    pub fn status_dto(&self, s: &Status) -> StatusDto {
        let mut d = StatusDto::from(s);
        d.reconnect_needed = self.reconnect_needed();
        d
    }

    /// Stores the secret in the keychain.
    pub async fn set_secret(&self, secret: &str) -> Result<(), AppError> {
        if secret.is_empty() {
            return Err(AppError::new("invalid_input", "the secret is empty"));
        }
        Self::keychain().set(secret)?;
        if self.is_running().await {
            self.mark_reconnect();
        }
        Ok(())
    }

    /// Removes the secret from the keychain.
    pub fn clear_secret(&self) -> Result<(), AppError> {
        Ok(Self::keychain().delete()?)
    }

    /// Stores a proxy's `httpPassword` in the keychain; a running engine re-registers that proxy with it.
    pub async fn set_proxy_password(&self, name: &str, password: &str) -> Result<(), AppError> {
        if password.is_empty() {
            return Err(AppError::new("invalid_input", format!("the password of proxy {name} is empty")));
        }
        Keychain::new(&ProxyDef::password_account(name)).set(password)?;
        self.apply_live().await;
        Ok(())
    }

    /// Removes a proxy's `httpPassword` from the keychain.
    pub async fn clear_proxy_password(&self, name: &str) -> Result<(), AppError> {
        Keychain::new(&ProxyDef::password_account(name)).delete()?;
        self.apply_live().await;
        Ok(())
    }

    /// The engine configuration of `profile` with each proxy's password from the keychain (never the main secret:
    /// that is handed to the engine separately).
    fn engine_config(&self, profile: &Profile) -> Result<ClientConfig, AppError> {
        let mut cfg = profile.to_client_config();
        if cfg.auth.method == "token" {
            cfg.auth.token.clear();
        }
        for p in cfg.proxies.iter_mut().filter(|p| !p.http_user.is_empty()) {
            p.http_password = Keychain::new(&ProxyDef::password_account(&p.name)).get()?.ok_or_else(|| {
                AppError::new(
                    "no_secret",
                    format!("proxy {}: no password is stored for its HTTP user: type it in the proxy and save", p.name),
                )
            })?;
        }
        Ok(cfg)
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
        let cfg = self.engine_config(&profile)?;
        self.reconnect_needed.store(false, Ordering::SeqCst);
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
        self.reconnect_needed.store(false, Ordering::SeqCst);
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

    /// "Check" with the form's `profile` and `secret` (`None`: the stored one): see [`crate::diagnostics`].
    pub async fn diagnose(
        &self,
        profile: Profile,
        secret: Option<String>,
    ) -> Result<Vec<portway_client::diagnose::Step>, AppError> {
        crate::diagnostics::run(&profile, secret, || Ok(Self::keychain().get()?)).await
    }

    /// Imports frpc config text (TOML, YAML, JSON or legacy INI): the profile is saved, the secret moved into the
    /// keychain (never into the file); proxies and visitors that could not be brought over are listed with why.
    pub async fn import_frpc(&self, text: &str) -> Result<Imported, AppError> {
        let i = Profile::import_frpc(text).map_err(|e| AppError::new("import_failed", e))?;
        let (p, skipped) = (i.profile, i.skipped);
        for (name, pw) in &i.proxy_passwords {
            Keychain::new(&ProxyDef::password_account(name)).set(pw).map_err(|e| {
                AppError::new(
                    if matches!(e, KeychainError::Unavailable(_)) { "keychain_unavailable" } else { "import_failed" },
                    format!("proxy {name}: its httpPassword could not be moved into the keychain, so nothing was imported: {e}"),
                )
            })?;
        }
        if let Some(s) = i.secret {
            Self::keychain().set(&s).map_err(|e| {
                AppError::new(
                    if matches!(e, KeychainError::Unavailable(_)) { "keychain_unavailable" } else { "import_failed" },
                    format!("the file's secret could not be moved into the keychain, so nothing was imported: {e}"),
                )
            })?;
        }
        Ok(Imported { profile: self.save_profile(p).await?, skipped })
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
