//! The app's state and actions, free of Tauri: the window's commands and the tray both call these, so the tray's
//! toggle and the window's button take the same code path. Tested directly in tests/desktop_controller.rs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use portway_client::config::ClientConfig;
use portway_client::oidc::TokenInfo;
use portway_client::{ClientHandle, ConnState, Secret, SecretSource, Status};
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::dto::StatusDto;
use crate::i18n::{Lang, LanguageChoice};
use crate::keychain::{Keychain, KeychainError};
use crate::logs::LogBuffer;
use crate::profile::{Profile, ProxyDef, Skipped, VisitorDef};
use crate::profiles::{self, Entry, Store};

/// What an import brought over, and what it left out (each with a code the window translates).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Imported {
    /// The profile's id.
    pub id: String,
    /// The saved profile.
    pub profile: Profile,
    /// Proxies and visitors not brought over (or without some settings), with the reason.
    pub skipped: Vec<Skipped>,
}

/// An error for the UI: a stable code and a message a person can act on (never a secret, never internals).
#[derive(Debug, Clone, Serialize, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    /// Stable code (docs/ui-contract.md).
    pub code: &'static str,
    /// What went wrong and what to do, in English (the logs; the window shows it as the detail of its own
    /// sentence in another language).
    pub message: String,
    /// What exactly, with the names it concerns, when the code alone says too little: the window says it in the
    /// chosen language.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<ErrorReason>,
}

/// The specifics of an [`AppError`]: a code and the names its sentence needs (ui/src/i18n, keys
/// `reason.<code>`). The English `message` goes with it as the detail.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "code", rename_all = "camelCase")]
pub enum ErrorReason {
    /// Connect: the profile has no secret in the keychain.
    NoSecret { profile: String },
    /// Connect: a proxy with an HTTP user has no password in the keychain.
    NoHttpPassword { proxy: String },
    /// Connect: an stcp/sudp/xtcp proxy has no secret key in the keychain.
    NoProxySecretKey { proxy: String },
    /// Connect: a visitor has no secret key in the keychain.
    NoVisitorSecretKey { visitor: String },
    /// A setting the backend refuses (`field` as the form names it, e.g. `proxies[1].remotePort`).
    InvalidField { field: String },
    /// Another profile has this name.
    NameTaken { name: String },
    /// Connect all: these profiles did not start (the others did).
    NotAllConnected { profiles: String },
}

impl AppError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        AppError { code, message: message.into(), reason: None }
    }

    /// The same error with its specifics.
    pub fn because(mut self, reason: ErrorReason) -> Self {
        self.reason = Some(reason);
        self
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
    /// Why not: `unavailable` (no keychain service answers: the window says how to get one) or `refused` (it
    /// answered with an error).
    pub code: Option<&'static str>,
    /// The keychain's own words, shown under the window's sentence.
    pub detail: Option<String>,
}

/// The keychain's answers for one profile (see [`Controller::keychain_lookup`]).
#[derive(Debug, Clone, PartialEq)]
pub struct KeychainLookup {
    /// Whether the keychain answered.
    pub status: KeychainStatus,
    /// Whether each of the profile's keychain entries (by account) holds a secret.
    pub stored: HashMap<String, bool>,
}

/// The page's first state in one IPC answer: what it shows before anything else is asked.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageStart {
    /// The language choice ("auto", "en" or "zh-CN").
    pub language: &'static str,
    /// Every profile, in order, with its status.
    pub profiles: Vec<ProfileSummary>,
    /// The first profile (the one the page shows), with its keychain flags; none without profiles.
    pub profile: Option<Profile>,
    /// The first profile's status.
    pub status: Option<StatusDto>,
    /// The log lines kept so far.
    pub logs: Vec<crate::logs::LogLine>,
    /// Whether the keychain answers.
    pub keychain: KeychainStatus,
}

/// The keychain accounts of profile `id`: its secret, each basic-auth proxy's password, each secret proxy's and
/// each visitor's secret key (the entries [`Controller::profile`] reports on).
pub fn secret_accounts(id: &str, p: &Profile) -> Vec<String> {
    let mut accounts = vec![profiles::secret_account(id)];
    for x in &p.proxies {
        if x.uses_basic_auth() {
            accounts.push(ProxyDef::password_account(id, &x.name));
        }
        if x.is_secret() {
            accounts.push(ProxyDef::secret_key_account(id, &x.name));
        }
    }
    accounts.extend(p.visitors.iter().map(|v| VisitorDef::secret_key_account(id, &v.name)));
    accounts
}

/// One profile in the list: id, name and its connection.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProfileSummary {
    pub id: String,
    pub name: String,
    pub status: StatusDto,
}

struct Engine {
    handle: ClientHandle,
    /// Stops the status forwarding before the profile's status is reset.
    forward: CancellationToken,
}

/// The desktop app's controller: every profile, and one engine per connected profile.
pub struct Controller {
    dir: PathBuf,
    store: Mutex<Store>,
    engines: tokio::sync::Mutex<HashMap<String, Engine>>,
    /// Each profile's status, by id (a profile without an engine is Disconnected).
    statuses: watch::Sender<BTreeMap<String, Status>>,
    /// Profiles with a saved change (server, auth, secret) that their running engine only applies after a reconnect.
    reconnect: Mutex<HashSet<String>>,
    /// The OS locale: the window's report (`set_language`), else the process environment's. "Auto" follows it.
    os_locale: Mutex<Option<String>>,
    /// Logs shown in the window.
    pub logs: LogBuffer,
}

/// A profile the backend refuses, naming the field.
fn invalid(e: crate::profile::Invalid) -> AppError {
    let field = e.field.clone();
    AppError::new("invalid_input", e.to_string()).because(ErrorReason::InvalidField { field })
}

fn unknown(id: &str) -> AppError {
    AppError::new("unknown_profile", format!("there is no profile with id {id:?}: it may have been deleted"))
}

fn idle_status(p: &Profile) -> Status {
    let mut s = Status::new(p.proxies.iter().filter(|x| x.enabled).map(|x| x.name.clone()));
    for v in p.visitors.iter().filter(|v| v.enabled) {
        s.visitors.insert(v.name.clone(), portway_client::status::VisitorStatus::idle());
    }
    s
}

/// The keychain accounts of a profile's rows (proxies' httpPassword and secretKey, visitors' secretKey), by row:
/// (name, accounts). The profile's own secret is [`profiles::secret_account`].
fn row_accounts(id: &str, p: &Profile) -> Vec<(RowKind, String, Vec<String>)> {
    let proxies = p.proxies.iter().map(|x| {
        let accounts = vec![ProxyDef::password_account(id, &x.name), ProxyDef::secret_key_account(id, &x.name)];
        (RowKind::Proxy, x.name.clone(), accounts)
    });
    let visitors = p
        .visitors
        .iter()
        .map(|v| (RowKind::Visitor, v.name.clone(), vec![VisitorDef::secret_key_account(id, &v.name)]));
    proxies.chain(visitors).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowKind {
    Proxy,
    Visitor,
}

impl Controller {
    /// Loads the profiles from `dir` (the OS config directory, or `PORTWAY_CONFIG_DIR`), migrating the previous
    /// version's single profile.json on first start.
    pub fn load(dir: &Path, logs: LogBuffer) -> Controller {
        let (mut store, loaded) = Store::load(dir);
        let os_locale = crate::i18n::env_locale();
        if loaded == profiles::Loaded::Fresh {
            // The first profile of a fresh install is named in the person's language (it is not stored until saved).
            let lang = store.options.language.resolve(os_locale.as_deref());
            if let Some(e) = store.entries.first_mut() {
                e.name = crate::i18n::text(lang, crate::i18n::Msg::DefaultProfileName).to_string();
            }
        }
        let statuses = store.entries.iter().map(|e| (e.id.clone(), idle_status(&e.profile))).collect();
        Controller {
            dir: dir.to_path_buf(),
            store: Mutex::new(store),
            engines: tokio::sync::Mutex::new(HashMap::new()),
            statuses: watch::channel(statuses).0,
            reconnect: Mutex::new(HashSet::new()),
            os_locale: Mutex::new(os_locale),
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

    /// The profiles file's path.
    pub fn profiles_path(&self) -> PathBuf {
        self.dir.join(profiles::FILE)
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn keychain(id: &str) -> Keychain {
        Keychain::new(&profiles::secret_account(id))
    }

    fn entry(&self, id: &str) -> Result<Entry, AppError> {
        self.store().get(id).cloned().ok_or_else(|| unknown(id))
    }

    /// Writes the store after `change`; on a write error nothing changes in memory either.
    fn update_store<T>(&self, change: impl FnOnce(&mut Store) -> Result<T, AppError>) -> Result<T, AppError> {
        let mut store = self.store();
        let mut next = store.clone();
        let out = change(&mut next)?;
        next.save(&self.dir).map_err(|e| AppError::new("io", e))?;
        *store = next;
        Ok(out)
    }

    /// Every profile's id and name, in order, with its status.
    pub fn list(&self) -> Vec<ProfileSummary> {
        let entries: Vec<(String, String)> =
            self.store().entries.iter().map(|e| (e.id.clone(), e.name.clone())).collect();
        let statuses = self.statuses.borrow().clone();
        entries
            .into_iter()
            .map(|(id, name)| {
                let status = self
                    .status_dto(&id, &statuses.get(&id).cloned().unwrap_or_else(|| Status::new(std::iter::empty())));
                ProfileSummary { id, name, status }
            })
            .collect()
    }

    /// The profile ids, in order.
    pub fn ids(&self) -> Vec<String> {
        self.store().entries.iter().map(|e| e.id.clone()).collect()
    }

    /// A profile's name.
    pub fn name(&self, id: &str) -> Option<String> {
        self.store().get(id).map(|e| e.name.clone())
    }

    /// The profile, with `hasSecret` and each proxy's `hasHttpPassword` filled from the keychain (they are never
    /// stored: a stored flag could disagree with the keychain).
    pub fn profile(&self, id: &str) -> Result<Profile, AppError> {
        self.profile_with(id, &HashMap::new())
    }

    /// [`Controller::profile`] with the keychain's answers of `known` (by account, from [`Controller::keychain_lookup`]);
    /// an account not in it is looked up.
    pub fn profile_with(&self, id: &str, known: &HashMap<String, bool>) -> Result<Profile, AppError> {
        let mut p = self.entry(id)?.profile;
        let stored = |account: String| {
            known.get(&account).copied().unwrap_or_else(|| matches!(Keychain::new(&account).get(), Ok(Some(_))))
        };
        p.auth.has_secret = stored(profiles::secret_account(id));
        for x in &mut p.proxies {
            x.has_http_password = x.uses_basic_auth() && stored(ProxyDef::password_account(id, &x.name));
            x.has_secret_key = x.is_secret() && stored(ProxyDef::secret_key_account(id, &x.name));
        }
        for v in &mut p.visitors {
            v.has_secret_key = stored(VisitorDef::secret_key_account(id, &v.name));
        }
        Ok(p)
    }

    /// Adds an empty profile named `name` (a free variant of it when taken).
    pub fn add_profile(&self, name: &str) -> Result<ProfileSummary, AppError> {
        let name = profiles::check_name(name).map_err(|e| AppError::new("invalid_input", e))?;
        let (id, name) = self.update_store(|s| {
            let (id, name) = (s.new_id(), s.free_name(&name));
            let mut e = Entry::new(id.clone(), name.clone());
            e.profile.options.start_minimized = s.options.start_minimized;
            e.profile.options.launch_at_login = s.options.launch_at_login;
            s.entries.push(e);
            Ok((id, name))
        })?;
        let status = Status::new(std::iter::empty());
        self.statuses.send_modify(|m| {
            m.insert(id.clone(), status.clone());
        });
        Ok(ProfileSummary { status: self.status_dto(&id, &status), id, name })
    }

    /// Renames a profile; its keychain entries stay (they are keyed by the id).
    pub fn rename_profile(&self, id: &str, name: &str) -> Result<(), AppError> {
        let name = profiles::check_name(name).map_err(|e| AppError::new("invalid_input", e))?;
        self.update_store(|s| {
            if s.entries.iter().any(|e| e.id != id && e.name.eq_ignore_ascii_case(&name)) {
                return Err(AppError::new("invalid_input", format!("a profile named {name:?} exists already"))
                    .because(ErrorReason::NameTaken { name: name.clone() }));
            }
            s.get_mut(id).ok_or_else(|| unknown(id))?.name = name;
            Ok(())
        })?;
        // Tell the tray (its submenu carries the name).
        self.statuses.send_modify(|_| {});
        Ok(())
    }

    /// Deletes a profile: disconnects it, removes its secret and proxy passwords from the keychain, then the
    /// profile. The last profile is replaced by a fresh empty one (the window always has one to show).
    pub async fn delete_profile(&self, id: &str) -> Result<(), AppError> {
        let entry = self.entry(id)?;
        if let Some(e) = self.engines.lock().await.remove(id) {
            e.forward.cancel();
            let _ = e.handle.stop().await;
        }
        Self::keychain(id).delete()?;
        for (_, _, accounts) in row_accounts(id, &entry.profile) {
            for a in accounts {
                Keychain::new(&a).delete()?;
            }
        }
        let default_name = crate::i18n::text(self.lang(), crate::i18n::Msg::DefaultProfileName);
        let added = self.update_store(|s| {
            s.entries.retain(|e| e.id != id);
            if s.entries.is_empty() {
                let e = Entry::new(s.new_id(), default_name.into());
                s.entries.push(e.clone());
                return Ok(Some(e.id));
            }
            Ok(None)
        })?;
        self.reconnect_set(id, false);
        self.statuses.send_modify(|m| {
            m.remove(id);
            if let Some(n) = added {
                m.insert(n, Status::new(std::iter::empty()));
            }
        });
        Ok(())
    }

    /// Validates and stores the profile (never a secret). While its engine runs, the proxy changes apply at once
    /// through the engine's reload (only the added, changed or removed proxies are touched; the others keep their
    /// connections); other changes (server, auth) mark the profile as needing a reconnect.
    pub async fn save_profile(&self, id: &str, mut p: Profile) -> Result<Profile, AppError> {
        p.validate().map_err(invalid)?;
        // A renamed row's keychain entries move with it: read before anything is written or deleted.
        let before = self.entry(id)?.profile;
        let moves = self.renamed_secrets(id, &before, &p)?;
        for x in &mut p.proxies {
            x.renamed_from = None;
        }
        for v in &mut p.visitors {
            v.renamed_from = None;
        }
        let old = self.update_store(|s| {
            s.options.start_minimized = p.options.start_minimized;
            s.options.launch_at_login = p.options.launch_at_login;
            for e in s.entries.iter_mut() {
                e.profile.options.start_minimized = p.options.start_minimized;
                e.profile.options.launch_at_login = p.options.launch_at_login;
            }
            let e = s.get_mut(id).ok_or_else(|| unknown(id))?;
            Ok(std::mem::replace(&mut e.profile, p.clone()))
        })?;
        // A removed (or renamed) row's secrets leave the keychain with it; a renamed row's go under its new name.
        let now = row_accounts(id, &p);
        for (kind, name, accounts) in row_accounts(id, &old) {
            if !now.iter().any(|(k, n, _)| *k == kind && *n == name) {
                for a in accounts {
                    let _ = Keychain::new(&a).delete();
                }
            }
        }
        for (account, secret) in moves {
            Keychain::new(&account).set(&secret)?;
        }
        if !self.is_running(id).await {
            self.statuses.send_modify(|m| {
                m.insert(id.to_string(), idle_status(&p));
            });
        }
        self.apply_live(id).await;
        self.profile(id)
    }

    /// The secrets of the rows `new` renames (`renamedFrom`), as (new account, secret).
    fn renamed_secrets(&self, id: &str, old: &Profile, new: &Profile) -> Result<Vec<(String, String)>, AppError> {
        let old_rows = row_accounts(id, old);
        let new_rows = row_accounts(id, new);
        let renames = new
            .proxies
            .iter()
            .map(|x| (RowKind::Proxy, &x.renamed_from, &x.name))
            .chain(new.visitors.iter().map(|v| (RowKind::Visitor, &v.renamed_from, &v.name)));
        let mut moves = Vec::new();
        for (kind, from, to) in renames {
            let Some(from) = from.as_ref().filter(|f| *f != to) else { continue };
            let Some((_, _, from_acc)) = old_rows.iter().find(|(k, n, _)| *k == kind && n == from) else { continue };
            let Some((_, _, to_acc)) = new_rows.iter().find(|(k, n, _)| *k == kind && n == to) else { continue };
            for (a, b) in from_acc.iter().zip(to_acc) {
                if let Some(secret) = Keychain::new(a).get()? {
                    moves.push((b.clone(), secret));
                }
            }
        }
        Ok(moves)
    }

    /// Applies the stored profile to its running engine, if any (see [`Self::save_profile`]).
    async fn apply_live(&self, id: &str) {
        let engines = self.engines.lock().await;
        let Some(e) = engines.get(id) else { return };
        let cfg = match self.profile(id).and_then(|p| self.engine_config(id, &p, true)) {
            Ok(c) => c,
            Err(_) => {
                self.mark_reconnect(id);
                return;
            }
        };
        if e.handle.reload(cfg).other_settings_changed {
            self.mark_reconnect(id);
        }
    }

    fn reconnect_set(&self, id: &str, on: bool) {
        let mut r = self.reconnect.lock().unwrap_or_else(|e| e.into_inner());
        if on {
            r.insert(id.to_string());
        } else {
            r.remove(id);
        }
    }

    fn mark_reconnect(&self, id: &str) {
        self.reconnect_set(id, true);
        // Tell the window (the status event carries the flag).
        self.statuses.send_modify(|_| {});
    }

    /// Whether a saved change of this profile waits for a reconnect (server address, auth, secret).
    pub fn reconnect_needed(&self, id: &str) -> bool {
        self.reconnect.lock().map(|r| r.contains(id)).unwrap_or(false)
    }

    /// A profile's status as the window sees it.
    pub fn status_dto(&self, id: &str, s: &Status) -> StatusDto {
        let mut d = StatusDto::from(s);
        d.reconnect_needed = self.reconnect_needed(id);
        d.profile_id = id.to_string();
        d
    }

    /// Stores the profile's secret in the keychain.
    pub async fn set_secret(&self, id: &str, secret: &str) -> Result<(), AppError> {
        self.entry(id)?;
        if secret.is_empty() {
            return Err(AppError::new("invalid_input", "the secret is empty"));
        }
        Self::keychain(id).set(secret)?;
        if self.is_running(id).await {
            self.mark_reconnect(id);
        }
        Ok(())
    }

    /// Removes the profile's secret from the keychain.
    pub fn clear_secret(&self, id: &str) -> Result<(), AppError> {
        self.entry(id)?;
        Ok(Self::keychain(id).delete()?)
    }

    /// Stores a proxy's `httpPassword` in the keychain; a running engine re-registers that proxy with it.
    pub async fn set_proxy_password(&self, id: &str, name: &str, password: &str) -> Result<(), AppError> {
        self.entry(id)?;
        if password.is_empty() {
            return Err(AppError::new("invalid_input", format!("the password of proxy {name} is empty")));
        }
        Keychain::new(&ProxyDef::password_account(id, name)).set(password)?;
        self.apply_live(id).await;
        Ok(())
    }

    /// Stores an stcp/sudp/xtcp proxy's `secretKey` in the keychain; a running engine re-registers that proxy.
    pub async fn set_proxy_secret_key(&self, id: &str, name: &str, secret: &str) -> Result<(), AppError> {
        self.set_row_secret(id, &ProxyDef::secret_key_account(id, name), &format!("proxy {name}"), secret).await
    }

    /// Stores a visitor's `secretKey` in the keychain; a running engine restarts that visitor with it.
    pub async fn set_visitor_secret_key(&self, id: &str, name: &str, secret: &str) -> Result<(), AppError> {
        self.set_row_secret(id, &VisitorDef::secret_key_account(id, name), &format!("visitor {name}"), secret).await
    }

    async fn set_row_secret(&self, id: &str, account: &str, what: &str, secret: &str) -> Result<(), AppError> {
        self.entry(id)?;
        if secret.is_empty() {
            return Err(AppError::new("invalid_input", format!("the secret key of {what} is empty")));
        }
        Keychain::new(account).set(secret)?;
        self.apply_live(id).await;
        Ok(())
    }

    /// Turns a visitor on or off (the window's one-click toggle and the tray's check item). Turning one on in a
    /// disconnected profile connects the profile; in a connected one only that visitor starts or stops.
    pub async fn set_visitor_enabled(&self, id: &str, name: &str, enabled: bool) -> Result<Profile, AppError> {
        let mut p = self.entry(id)?.profile;
        let Some(v) = p.visitors.iter_mut().find(|v| v.name == name) else {
            return Err(AppError::new("invalid_input", format!("there is no visitor named {name:?} in this profile")));
        };
        v.enabled = enabled;
        let saved = self.save_profile(id, p).await?;
        if enabled && !self.is_running(id).await {
            match self.connect(id).await {
                Ok(()) | Err(AppError { code: "already_connected", .. }) => {}
                Err(e) => return Err(e),
            }
        }
        // Tell the tray (its check items come from the profile).
        self.statuses.send_modify(|_| {});
        Ok(saved)
    }

    /// The tray's check item: turns the visitor off when on, on when off (see [`Self::set_visitor_enabled`]).
    pub async fn toggle_visitor(&self, id: &str, name: &str) -> Result<(), AppError> {
        let on = self.entry(id)?.profile.visitors.iter().any(|v| v.name == name && v.enabled);
        self.set_visitor_enabled(id, name, !on).await.map(|_| ())
    }

    /// A profile's visitors for the tray (none for an unknown id).
    pub fn visitor_toggles(&self, id: &str) -> Vec<crate::tray::VisitorToggle> {
        let store = self.store();
        let Some(e) = store.get(id) else { return Vec::new() };
        e.profile
            .visitors
            .iter()
            .map(|v| crate::tray::VisitorToggle {
                name: v.name.clone(),
                enabled: v.enabled,
                local_addr: v.local_addr(),
            })
            .collect()
    }

    /// Removes a proxy's `httpPassword` from the keychain.
    pub async fn clear_proxy_password(&self, id: &str, name: &str) -> Result<(), AppError> {
        self.entry(id)?;
        Keychain::new(&ProxyDef::password_account(id, name)).delete()?;
        self.apply_live(id).await;
        Ok(())
    }

    /// The engine configuration of `profile` with each proxy's password and secret key and each visitor's secret
    /// key from the keychain (never the main secret: that is handed to the engine separately). A row whose secret
    /// is missing is an error naming it; with `lenient` (a live edit, whose secret the window stores right after
    /// the save) the row is left out instead, and added by the reload that follows storing its secret.
    fn engine_config(&self, id: &str, profile: &Profile, lenient: bool) -> Result<ClientConfig, AppError> {
        let mut cfg = profile.to_client_config();
        if cfg.auth.method == "token" {
            cfg.auth.token.clear();
        }
        let mut missing = Vec::new();
        for p in cfg.proxies.iter_mut() {
            if !p.http_user.is_empty() {
                match Keychain::new(&ProxyDef::password_account(id, &p.name)).get()? {
                    Some(pw) => p.http_password = pw,
                    None => missing.push((
                        p.name.clone(),
                        AppError::new(
                            "no_secret",
                            format!(
                                "proxy {}: no password is stored for its HTTP user: type it in the proxy and save",
                                p.name
                            ),
                        )
                        .because(ErrorReason::NoHttpPassword { proxy: p.name.clone() }),
                    )),
                }
            }
            if matches!(p.kind.as_str(), "stcp" | "sudp" | "xtcp") {
                match Keychain::new(&ProxyDef::secret_key_account(id, &p.name)).get()? {
                    Some(k) => p.secret_key = k,
                    None => missing.push((
                        p.name.clone(),
                        AppError::new(
                            "no_secret",
                            format!(
                                "proxy {}: no secret key is stored: type the key visitors must give and save",
                                p.name
                            ),
                        )
                        .because(ErrorReason::NoProxySecretKey { proxy: p.name.clone() }),
                    )),
                }
            }
        }
        let mut missing_visitors = Vec::new();
        for v in cfg.visitors.iter_mut() {
            match Keychain::new(&VisitorDef::secret_key_account(id, &v.name)).get()? {
                Some(k) => v.secret_key = k,
                None => missing_visitors.push((
                    v.name.clone(),
                    AppError::new(
                        "no_secret",
                        format!("visitor {}: no secret key is stored: type the provider's secret key and save", v.name),
                    )
                    .because(ErrorReason::NoVisitorSecretKey { visitor: v.name.clone() }),
                )),
            }
        }
        if !lenient {
            if let Some((_, why)) = missing.first().or(missing_visitors.first()) {
                return Err(why.clone());
            }
        }
        for (_, why) in missing.iter().chain(&missing_visitors) {
            tracing::warn!(profile = %id, "{why}");
        }
        cfg.proxies.retain(|p| !missing.iter().any(|(n, _)| *n == p.name));
        cfg.visitors.retain(|v| !missing_visitors.iter().any(|(n, _)| *n == v.name));
        Ok(cfg)
    }

    /// The keychain's answers for the window's first picture of profile `id`: whether the keychain answers and
    /// which of the profile's entries hold a secret (by account). One lookup per entry and no separate probe (an
    /// entry's answer says whether the keychain answers); after a failure the other entries count as empty
    /// instead of each waiting for the same failure. Blocking (a D-Bus round trip per entry): call it off the main
    /// thread.
    pub fn keychain_lookup(&self, id: &str) -> KeychainLookup {
        let Ok(entry) = self.entry(id) else {
            return KeychainLookup { status: self.keychain_status(), stored: HashMap::new() };
        };
        let accounts = secret_accounts(id, &entry.profile);
        let mut stored = HashMap::new();
        let mut status = KeychainStatus { available: true, code: None, detail: None };
        for account in accounts {
            let found = if status.available {
                match Keychain::new(&account).get() {
                    Ok(v) => v.is_some(),
                    Err(e) => {
                        status =
                            KeychainStatus { available: false, code: Some(e.code()), detail: Some(e.detail().into()) };
                        false
                    }
                }
            } else {
                false
            };
            stored.insert(account, found);
        }
        KeychainLookup { status, stored }
    }

    /// Everything the window's page shows first, in one answer (see `page_start` in app.rs): the language choice,
    /// the profiles, the first one's settings, status and the log, with the keychain's answers of `lookup`.
    pub fn page_start(&self, lookup: KeychainLookup) -> PageStart {
        let profiles = self.list();
        let first = profiles.first().map(|p| p.id.clone());
        let profile = first.as_deref().and_then(|id| self.profile_with(id, &lookup.stored).ok());
        let status = first.as_deref().map(|id| self.status_dto(id, &self.status(id)));
        PageStart {
            language: self.language_choice().as_str(),
            profiles,
            profile,
            status,
            logs: self.logs.snapshot(),
            keychain: lookup.status,
        }
    }

    /// Whether the keychain can be used.
    pub fn keychain_status(&self) -> KeychainStatus {
        match Keychain::probe() {
            Ok(()) => KeychainStatus { available: true, code: None, detail: None },
            Err(e) => KeychainStatus { available: false, code: Some(e.code()), detail: Some(e.detail().to_string()) },
        }
    }

    /// A profile's current status (Disconnected for an unknown id).
    pub fn status(&self, id: &str) -> Status {
        self.statuses.borrow().get(id).cloned().unwrap_or_else(|| Status::new(std::iter::empty()))
    }

    /// Every profile's status, by id.
    pub fn statuses(&self) -> BTreeMap<String, Status> {
        self.statuses.borrow().clone()
    }

    /// Every status change of any profile.
    pub fn watch(&self) -> watch::Receiver<BTreeMap<String, Status>> {
        self.statuses.subscribe()
    }

    /// Whether the profile's engine runs (connecting, connected or retrying).
    pub async fn is_running(&self, id: &str) -> bool {
        self.engines.lock().await.contains_key(id)
    }

    /// The ids of the profiles whose engine runs.
    pub async fn running(&self) -> HashSet<String> {
        self.engines.lock().await.keys().cloned().collect()
    }

    /// Starts the profile's engine with its stored settings and its secret from the keychain. Other profiles'
    /// engines are not touched.
    pub async fn connect(&self, id: &str) -> Result<(), AppError> {
        let mut engines = self.engines.lock().await;
        let name = self.entry(id)?.name;
        if engines.contains_key(id) {
            return Err(AppError::new("already_connected", format!("{name} is already connected or connecting")));
        }
        let profile = self.profile(id)?;
        profile.validate().map_err(|e| AppError { message: format!("{name}: {e}"), ..invalid(e) })?;
        let secret = Self::keychain(id).get()?.ok_or_else(|| {
            AppError::new(
                "no_secret",
                format!("{name}: no secret is stored: enter the client secret (or token) and save it first"),
            )
            .because(ErrorReason::NoSecret { profile: name.clone() })
        })?;
        let cfg = self.engine_config(id, &profile, false)?;
        self.reconnect_set(id, false);
        let handle = portway_client::start(cfg, SecretSource::Value(Secret::new(secret)));
        // Forward the engine's status into this profile's slot until the engine is stopped.
        let forward = CancellationToken::new();
        let (mut rx, tx, stop, key) = (handle.watch(), self.statuses.clone(), forward.clone(), id.to_string());
        tokio::spawn(async move {
            loop {
                let s = rx.borrow_and_update().clone();
                tx.send_if_modified(|m| {
                    if stop.is_cancelled() || !m.contains_key(&key) {
                        return false;
                    }
                    m.insert(key.clone(), s);
                    true
                });
                tokio::select! {
                    r = rx.changed() => if r.is_err() { break },
                    _ = stop.cancelled() => break,
                }
            }
        });
        engines.insert(id.to_string(), Engine { handle, forward });
        Ok(())
    }

    /// Stops the profile's engine (also cancels connecting and retrying).
    pub async fn disconnect(&self, id: &str) -> Result<(), AppError> {
        let engine = self.engines.lock().await.remove(id);
        let Some(e) = engine else {
            let name = self.name(id).unwrap_or_else(|| id.to_string());
            return Err(AppError::new("not_connected", format!("{name} is not connected")));
        };
        e.forward.cancel();
        let _ = e.handle.stop().await;
        self.reconnect_set(id, false);
        let idle = self.entry(id).map(|e| idle_status(&e.profile)).unwrap_or_else(|_| Status::new(std::iter::empty()));
        self.statuses.send_modify(|m| {
            if m.contains_key(id) {
                m.insert(id.to_string(), idle);
            }
        });
        Ok(())
    }

    /// The tray's toggle of one profile: the same connect/disconnect the window's button calls.
    pub async fn toggle(&self, id: &str) -> Result<(), AppError> {
        if self.is_running(id).await {
            self.disconnect(id).await
        } else {
            self.connect(id).await
        }
    }

    /// Connects every profile that is not running; the errors (e.g. a profile without a secret) are returned by
    /// profile name, the others connect regardless.
    pub async fn connect_all(&self) -> Vec<(String, AppError)> {
        let mut errors = Vec::new();
        for id in self.ids() {
            if self.is_running(&id).await {
                continue;
            }
            if let Err(e) = self.connect(&id).await {
                errors.push((self.name(&id).unwrap_or(id), e));
            }
        }
        errors
    }

    /// Disconnects every running profile.
    pub async fn disconnect_all(&self) {
        for id in self.running().await {
            let _ = self.disconnect(&id).await;
        }
    }

    /// Fetches a token with `profile` and `secret` (or the profile's stored secret) and describes it.
    pub async fn test_sign_in(
        &self,
        id: &str,
        profile: Profile,
        secret: Option<String>,
    ) -> Result<TokenInfo, AppError> {
        if profile.auth.method != "oidc" {
            return Err(AppError::new("invalid_input", "Test sign-in needs the OIDC method"));
        }
        let secret = match secret.filter(|s| !s.is_empty()) {
            Some(s) => s,
            None => Self::keychain(id)
                .get()?
                .ok_or_else(|| AppError::new("no_secret", "enter the client secret to test the sign-in"))?,
        };
        let cfg = profile.to_client_config();
        portway_client::oidc::test_sign_in(&cfg.auth.oidc, Secret::new(secret), cfg.resolver())
            .await
            .map_err(|e| AppError::new("sign_in_failed", e.to_string()))
    }

    /// "Check" with the form's `profile` and `secret` (`None`: the profile `id`'s stored one): see
    /// [`crate::diagnostics`].
    pub async fn diagnose(
        &self,
        id: &str,
        profile: Profile,
        secret: Option<String>,
    ) -> Result<Vec<portway_client::diagnose::Step>, AppError> {
        self.entry(id)?;
        crate::diagnostics::run(&profile, secret, || Ok(Self::keychain(id).get()?)).await
    }

    /// Imports frpc config text (TOML, YAML, JSON or legacy INI) into the profile `id` (replacing its settings,
    /// keeping its name), or into a new profile named after the file's server when `id` is None. The secrets move
    /// into that profile's keychain entries (never into the file); proxies and visitors that could not be brought
    /// over are listed with why.
    pub async fn import_frpc(&self, id: Option<&str>, text: &str) -> Result<Imported, AppError> {
        let i = Profile::import_frpc(text).map_err(|e| AppError::new("import_failed", e))?;
        if let Some(id) = id {
            self.entry(id)?;
        }
        let (p, skipped) = (i.profile, i.skipped);
        p.validate().map_err(|e| AppError {
            code: "import_failed",
            message: format!("the file cannot be used: {e}"),
            ..invalid(e)
        })?;
        let keychain_err = |what: String| {
            move |e: KeychainError| {
                AppError::new(
                    if matches!(e, KeychainError::Unavailable(_)) { "keychain_unavailable" } else { "import_failed" },
                    format!("{what} could not be moved into the keychain, so nothing was imported: {e}"),
                )
            }
        };
        // The keychain first: without it nothing is written (a new profile's id is only reserved here).
        let target = match id {
            Some(id) => id.to_string(),
            None => self.store().new_id(),
        };
        for (name, pw) in &i.proxy_passwords {
            Keychain::new(&ProxyDef::password_account(&target, name))
                .set(pw)
                .map_err(keychain_err(format!("proxy {name}: its httpPassword")))?;
        }
        for (name, key) in &i.proxy_secret_keys {
            Keychain::new(&ProxyDef::secret_key_account(&target, name))
                .set(key)
                .map_err(keychain_err(format!("proxy {name}: its secretKey")))?;
        }
        for (name, key) in &i.visitor_secret_keys {
            Keychain::new(&VisitorDef::secret_key_account(&target, name))
                .set(key)
                .map_err(keychain_err(format!("visitor {name}: its secretKey")))?;
        }
        if let Some(s) = i.secret {
            Self::keychain(&target).set(&s).map_err(keychain_err("the file's secret".into()))?;
        }
        if id.is_none() {
            let base =
                if p.server.addr.trim().is_empty() { "Imported".to_string() } else { p.server.addr.trim().to_string() };
            let name = profiles::check_name(&base).unwrap_or_else(|_| "Imported".into());
            let target2 = target.clone();
            self.update_store(move |s| {
                let name = s.free_name(&name);
                s.entries.push(Entry::new(target2, name));
                Ok(())
            })?;
            self.statuses.send_modify(|m| {
                m.insert(target.clone(), Status::new(std::iter::empty()));
            });
        }
        let profile = self.save_profile(&target, p).await?;
        Ok(Imported { id: target, profile, skipped })
    }

    /// frpc.toml text of the profile, without its secret.
    pub fn export_frpc(&self, id: &str) -> Result<String, AppError> {
        Ok(self.profile(id)?.to_frpc())
    }

    /// The app's options (start minimised, launch at login).
    pub fn app_options(&self) -> profiles::AppOptions {
        self.store().options.clone()
    }

    /// The language chosen in the window's Options.
    pub fn language_choice(&self) -> LanguageChoice {
        self.store().options.language
    }

    /// The language the tray and the notifications speak: the choice, or the OS locale's for Auto.
    pub fn lang(&self) -> Lang {
        let os = self.os_locale.lock().unwrap_or_else(|e| e.into_inner()).clone();
        self.language_choice().resolve(os.as_deref())
    }

    /// Stores the language choice (`"auto"`, `"en"` or `"zh-CN"`) with the app's options and relabels the tray.
    /// `os_locale` is the OS locale the window sees (empty: keep the one known); "auto" follows it.
    ///
    /// # Errors
    /// `invalid_input` for another choice; `io` when profiles.json cannot be written.
    pub fn set_language(&self, choice: &str, os_locale: &str) -> Result<(), AppError> {
        let choice = LanguageChoice::parse(choice).ok_or_else(|| {
            AppError::new("invalid_input", format!("unknown language {choice:?}: use \"auto\", \"en\" or \"zh-CN\""))
        })?;
        if !os_locale.trim().is_empty() {
            *self.os_locale.lock().unwrap_or_else(|e| e.into_inner()) = Some(os_locale.trim().to_string());
        }
        if self.language_choice() != choice {
            self.update_store(|s| {
                s.options.language = choice;
                Ok(())
            })?;
        }
        // The tray is rebuilt from every status change; this one changes its words.
        self.statuses.send_modify(|_| {});
        Ok(())
    }

    /// The profiles to connect at launch.
    pub fn connect_on_launch(&self) -> Vec<String> {
        self.store().entries.iter().filter(|e| e.profile.options.connect_on_launch).map(|e| e.id.clone()).collect()
    }

    /// Whether the state is a connected one (for notifications).
    pub fn connected(s: &Status) -> bool {
        matches!(s.conn, ConnState::Connected { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("portway-ctl-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    /// Every error reason and keychain problem the window is sent has a sentence in both of its languages
    /// (ui/src/i18n), naming the reason's parameters.
    #[test]
    fn every_error_reason_is_translated_in_the_window() {
        let all = [
            ErrorReason::NoSecret { profile: "Home".into() },
            ErrorReason::NoHttpPassword { proxy: "web".into() },
            ErrorReason::NoProxySecretKey { proxy: "nas".into() },
            ErrorReason::NoVisitorSecretKey { visitor: "lab".into() },
            ErrorReason::InvalidField { field: "server.port".into() },
            ErrorReason::NameTaken { name: "Home".into() },
            ErrorReason::NotAllConnected { profiles: "Home, Work".into() },
        ];
        for r in all {
            // No wildcard: a new reason fails to compile here until it is added to the list above.
            match &r {
                ErrorReason::NoSecret { .. }
                | ErrorReason::NoHttpPassword { .. }
                | ErrorReason::NoProxySecretKey { .. }
                | ErrorReason::NoVisitorSecretKey { .. }
                | ErrorReason::InvalidField { .. }
                | ErrorReason::NameTaken { .. }
                | ErrorReason::NotAllConnected { .. } => {}
            }
            crate::i18n::ui_catalogue::assert_translated("reason", serde_json::to_value(&r).unwrap());
        }
        for e in [KeychainError::Unavailable("no D-Bus".into()), KeychainError::Other("locked".into())] {
            crate::i18n::ui_catalogue::assert_translated("keychain", serde_json::json!({ "code": e.code() }));
        }
        // As the window gets an error: the stable code, the English message, the reason with its names.
        let e = AppError::new("no_secret", "proxy nas: no secret key is stored")
            .because(ErrorReason::NoProxySecretKey { proxy: "nas".into() });
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"code": "no_secret", "message": "proxy nas: no secret key is stored",
                "reason": {"code": "noProxySecretKey", "proxy": "nas"}})
        );
        let plain = serde_json::to_value(AppError::new("io", "x")).unwrap();
        assert!(plain.get("reason").is_none(), "no reason, no field: {plain}");
    }

    /// The page's first state comes from memory, with the keychain's answers it is given: this test has no
    /// keychain, so a flag looked up here instead would read "nothing stored".
    #[test]
    fn page_start_answers_from_memory_with_the_given_keychain_answers() {
        let dir = temp_dir("page-start");
        let c = Controller::load(&dir, LogBuffer::default());
        let id = c.ids()[0].clone();
        let row = |v: serde_json::Value| serde_json::from_value::<ProxyDef>(v).expect("proxy row");
        let web = row(serde_json::json!({"name": "web", "type": "http", "localIp": "127.0.0.1", "localPort": 80,
            "enabled": true, "customDomains": ["a.example.com"], "httpUser": "me"}));
        let nas = row(serde_json::json!({"name": "nas", "type": "stcp", "localIp": "127.0.0.1", "localPort": 445,
            "enabled": true}));
        let ssh = row(serde_json::json!({"name": "ssh", "type": "tcp", "localIp": "127.0.0.1", "localPort": 22,
            "remotePort": 6000, "enabled": true}));
        let lab = serde_json::from_value::<VisitorDef>(serde_json::json!({"name": "lab", "type": "stcp",
            "serverName": "nas", "bindPort": 9000, "enabled": true}))
        .expect("visitor row");
        c.update_store(|s| {
            let p = &mut s.get_mut(&id).expect("first profile").profile;
            (p.proxies, p.visitors) = (vec![web, nas, ssh], vec![lab]);
            Ok(())
        })
        .expect("stored");
        let accounts = secret_accounts(&id, &c.entry(&id).expect("entry").profile);
        assert_eq!(
            accounts,
            [
                profiles::secret_account(&id),
                ProxyDef::password_account(&id, "web"),
                ProxyDef::secret_key_account(&id, "nas"),
                VisitorDef::secret_key_account(&id, "lab"),
            ],
            "the secret, the basic-auth password, the secret keys; nothing for a plain tcp proxy"
        );
        let status = KeychainStatus { available: true, code: None, detail: None };
        let stored = accounts.iter().map(|a| (a.clone(), true)).collect();
        let start = c.page_start(KeychainLookup { status: status.clone(), stored });
        let p = start.profile.as_ref().expect("the first profile");
        assert!(p.auth.has_secret && p.proxies[0].has_http_password && p.proxies[1].has_secret_key, "{p:?}");
        assert!(p.visitors[0].has_secret_key && !p.proxies[2].has_secret_key, "{p:?}");
        assert_eq!(start.profiles.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), [id.as_str()]);
        assert_eq!((start.language, &start.keychain), ("auto", &status));
        let json = serde_json::to_value(&start).expect("json");
        for key in ["language", "profiles", "profile", "status", "logs", "keychain"] {
            assert!(json.get(key).is_some(), "{key} missing from {json}");
        }
        assert_eq!(json["status"]["profileId"], serde_json::json!(id), "{json}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The language choice is stored with the app's options, survives a restart, relabels through a status
    /// change (what rebuilds the tray), and "auto" follows the OS locale the window reports.
    #[test]
    fn the_language_is_stored_and_auto_follows_the_window_locale() {
        let dir = temp_dir("lang");
        let c = Controller::load(&dir, LogBuffer::default());
        let mut rx = c.watch();
        rx.borrow_and_update();
        c.set_language("zh-CN", "en-US").expect("set zh-CN");
        assert!(rx.has_changed().unwrap(), "the tray hears of the change");
        assert_eq!((c.language_choice(), c.lang()), (LanguageChoice::ZhCn, Lang::ZhCn));
        let text = std::fs::read_to_string(dir.join(profiles::FILE)).expect("profiles.json written");
        assert!(text.contains("\"language\": \"zh-CN\""), "{text}");

        let again = Controller::load(&dir, LogBuffer::default());
        assert_eq!(again.language_choice(), LanguageChoice::ZhCn, "kept across a restart");
        again.set_language("auto", "en-GB").unwrap();
        assert_eq!(again.lang(), Lang::En);
        again.set_language("auto", "zh-TW").unwrap();
        assert_eq!(again.lang(), Lang::ZhCn);
        again.set_language("auto", "").unwrap();
        assert_eq!(again.lang(), Lang::ZhCn, "an empty report keeps the locale known");

        let e = again.set_language("fr", "fr-FR").unwrap_err();
        assert_eq!(e.code, "invalid_input");
        assert!(e.message.contains("\"fr\"") && e.message.contains("zh-CN"), "{}", e.message);
        assert_eq!(again.language_choice(), LanguageChoice::Auto, "a bad choice changes nothing");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
