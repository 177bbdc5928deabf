//! Several profiles (one per server) in `profiles.json`, without secrets: each profile's secret and proxy passwords
//! are keychain entries of their own, keyed by the profile's id (`profile:ID`, `profile:ID:proxy:NAME:httpPassword`).
//! The id never changes (a rename changes the name only), so a rename leaves the keychain alone.
//!
//! The previous version kept one profile in `profile.json` with its secret under `profile:default`; on first start
//! it becomes the profile with id `default` (so its keychain entries keep working untouched) and the old file is
//! renamed to `profile.json.migrated`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::i18n::LanguageChoice;
use crate::profile::{Options, Profile};

/// The file holding every profile.
pub const FILE: &str = "profiles.json";
/// The previous version's single-profile file.
pub const OLD_FILE: &str = "profile.json";
/// The id of the profile migrated from [`OLD_FILE`] (and of the first profile of a fresh install).
pub const DEFAULT_ID: &str = "default";

/// The keychain account of a profile's client secret or token.
pub fn secret_account(id: &str) -> String {
    format!("profile:{id}")
}

/// Options of the app itself (not of one profile).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppOptions {
    pub start_minimized: bool,
    pub launch_at_login: bool,
    /// The window's, the tray's and the notifications' language (`"auto"` follows the OS locale).
    #[serde(default)]
    pub language: LanguageChoice,
}

/// One profile with its id and name.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Stable id (keychain accounts derive from it).
    pub id: String,
    /// What the person calls it ("Home", "Work").
    pub name: String,
    /// The settings. `options.start_minimized` / `launch_at_login` are the app's ([`AppOptions`]).
    pub profile: Profile,
}

/// Every profile and the app's options.
#[derive(Debug, Clone, PartialEq)]
pub struct Store {
    pub options: AppOptions,
    pub entries: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredEntry {
    id: String,
    name: String,
    profile: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredFile {
    #[serde(default)]
    options: AppOptions,
    profiles: Vec<StoredEntry>,
}

/// How [`Store::load`] found the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    /// profiles.json read.
    Read,
    /// profile.json migrated into profiles.json.
    Migrated,
    /// Nothing stored yet.
    Fresh,
    /// profiles.json could not be read; it was set aside under this name.
    SetAside(PathBuf),
}

/// A profile name a person can tell apart in a menu.
pub fn check_name(name: &str) -> Result<String, String> {
    let n = name.trim();
    if n.is_empty() {
        return Err("the profile name is empty".into());
    }
    if n.chars().count() > 60 {
        return Err("the profile name is longer than 60 characters".into());
    }
    if n.chars().any(char::is_control) {
        return Err("the profile name contains a control character".into());
    }
    Ok(n.to_string())
}

impl Entry {
    /// A new, empty profile.
    pub fn new(id: String, name: String) -> Entry {
        Entry { id, name, profile: Profile::default() }
    }
}

impl Store {
    /// One empty profile: what a fresh install shows (not written until saved).
    pub fn fresh() -> Store {
        Store { options: AppOptions::default(), entries: vec![Entry::new(DEFAULT_ID.into(), "My server".into())] }
    }

    /// Reads `dir`: profiles.json, else the old profile.json (migrated and written), else a fresh store. There is
    /// always at least one profile.
    pub fn load(dir: &Path) -> (Store, Loaded) {
        let path = dir.join(FILE);
        if let Ok(text) = std::fs::read_to_string(&path) {
            match Store::from_json(&text) {
                Ok(s) => return (s.non_empty(), Loaded::Read),
                Err(e) => {
                    let aside = dir.join(format!("{FILE}.unreadable"));
                    tracing::warn!(file = %path.display(), error = %e, aside = %aside.display(), "profiles file unreadable; set aside");
                    let _ = std::fs::rename(&path, &aside);
                    return (Store::fresh(), Loaded::SetAside(aside));
                }
            }
        }
        let old = dir.join(OLD_FILE);
        if let Some(p) = std::fs::read_to_string(&old).ok().and_then(|t| Profile::from_stored_json(&t)) {
            let store = Store::migrate(p);
            match store.save(dir) {
                Ok(()) => {
                    let _ = std::fs::rename(&old, dir.join(format!("{OLD_FILE}.migrated")));
                    tracing::info!(from = %old.display(), to = %path.display(), "single profile migrated");
                }
                Err(e) => tracing::warn!(error = %e, "could not write the migrated profiles; profile.json kept"),
            }
            return (store, Loaded::Migrated);
        }
        (Store::fresh(), Loaded::Fresh)
    }

    /// The store made from the previous version's profile: id `default` (its keychain account was
    /// `profile:default`, which is [`secret_account`] of that id), named after its server.
    pub fn migrate(p: Profile) -> Store {
        let name =
            if p.server.addr.trim().is_empty() { "My server".to_string() } else { p.server.addr.trim().to_string() };
        let options = AppOptions {
            start_minimized: p.options.start_minimized,
            launch_at_login: p.options.launch_at_login,
            ..AppOptions::default()
        };
        Store { options, entries: vec![Entry { id: DEFAULT_ID.into(), name, profile: p }] }
    }

    fn non_empty(self) -> Store {
        if self.entries.is_empty() {
            Store { options: self.options, ..Store::fresh() }
        } else {
            self
        }
    }

    /// Parses profiles.json (computed flags dropped, as [`Profile::from_stored_json`] does).
    pub fn from_json(text: &str) -> Result<Store, String> {
        let f: StoredFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut entries = Vec::new();
        for e in f.profiles {
            let mut p = Profile::from_stored_json(&e.profile.to_string())
                .ok_or_else(|| format!("profile {:?} does not have the expected fields", e.name))?;
            p.options = Options {
                connect_on_launch: p.options.connect_on_launch,
                start_minimized: f.options.start_minimized,
                launch_at_login: f.options.launch_at_login,
            };
            entries.push(Entry { id: e.id, name: e.name, profile: p });
        }
        Ok(Store { options: f.options, entries })
    }

    /// profiles.json's text: no secret and nothing computed (no `hasSecret`); the app's options once, at the top.
    pub fn to_json(&self) -> String {
        let profiles = self
            .entries
            .iter()
            .map(|e| {
                let mut v: serde_json::Value =
                    serde_json::from_str(&e.profile.to_stored_json()).unwrap_or(serde_json::Value::Null);
                if let Some(o) = v.get_mut("options").and_then(|o| o.as_object_mut()) {
                    o.remove("startMinimized");
                    o.remove("launchAtLogin");
                }
                StoredEntry { id: e.id.clone(), name: e.name.clone(), profile: v }
            })
            .collect();
        let f = StoredFile { options: self.options.clone(), profiles };
        serde_json::to_string_pretty(&f).unwrap_or_default()
    }

    /// Writes profiles.json (through a temporary file, so a crash leaves the old file whole).
    pub fn save(&self, dir: &Path) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join(FILE);
        let tmp = dir.join(format!("{FILE}.tmp"));
        std::fs::write(&tmp, self.to_json()).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &path).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// The entry with `id`.
    pub fn get(&self, id: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// The entry with `id`, mutable.
    pub fn get_mut(&mut self, id: &str) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.id == id)
    }

    /// An id no entry has: `p` and a hex time stamp (ids are never reused while their entry exists).
    pub fn new_id(&self) -> String {
        let base = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        (0u64..)
            .map(|n| format!("p{:x}", base.wrapping_add(n)))
            .find(|id| self.get(id).is_none())
            .unwrap_or_else(|| "p0".into())
    }

    /// A name not taken yet: `base`, else `base 2`, `base 3`...
    pub fn free_name(&self, base: &str) -> String {
        let taken = |n: &str| self.entries.iter().any(|e| e.name.eq_ignore_ascii_case(n));
        if !taken(base) {
            return base.to_string();
        }
        (2..).map(|i| format!("{base} {i}")).find(|n| !taken(n)).unwrap_or_else(|| base.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = include_str!("../../tests/fixtures/desktop/profile-v1.json");

    #[test]
    fn round_trip_keeps_each_profile_and_stores_no_flags() {
        let mut s = Store::migrate(Profile::from_stored_json(OLD).unwrap());
        let mut work = Entry::new(s.new_id(), "Work".into());
        work.profile.server.addr = "work.example.com".into();
        work.profile.auth.has_secret = true;
        work.profile.options.connect_on_launch = true;
        s.entries.push(work);
        s.options.launch_at_login = true;
        s.options.language = LanguageChoice::ZhCn;
        let text = s.to_json();
        assert!(!text.contains("hasSecret") && !text.contains("hasHttpPassword"), "{text}");
        assert_eq!(text.matches("launchAtLogin").count(), 1, "app options once: {text}");
        let back = Store::from_json(&text).unwrap();
        assert_eq!(back.entries.len(), 2);
        assert_eq!(back.options.language, LanguageChoice::ZhCn, "the language is kept with the app's options");
        assert!(text.contains("\"language\": \"zh-CN\""), "{text}");
        assert_eq!(back.entries[1].name, "Work");
        assert!(!back.entries[1].profile.auth.has_secret);
        assert!(back.entries[1].profile.options.connect_on_launch);
        assert!(back.entries[0].profile.options.launch_at_login, "the app's options show in every profile");
        assert_eq!(back.entries[0].profile.proxies, s.entries[0].profile.proxies);
    }

    #[test]
    fn names_and_ids_are_checked_and_unique() {
        let mut s = Store::fresh();
        assert_eq!(check_name("  Home "), Ok("Home".into()));
        assert!(check_name(" ").unwrap_err().contains("empty"));
        assert!(check_name("a\nb").is_err());
        assert_eq!(s.free_name("My server"), "My server 2");
        let id = s.new_id();
        s.entries.push(Entry::new(id.clone(), "x".into()));
        assert_ne!(s.new_id(), id);
        assert!(Store::from_json("{\"profiles\": [{\"id\": \"a\", \"name\": \"b\", \"profile\": 3}]}").is_err());
        assert_eq!(Store::from_json("{\"profiles\": []}").unwrap().non_empty().entries[0].id, DEFAULT_ID);
        // A file from before the language option: Auto.
        let old =
            Store::from_json("{\"options\": {\"startMinimized\": true, \"launchAtLogin\": false}, \"profiles\": []}");
        assert_eq!(old.unwrap().options.language, LanguageChoice::Auto);
    }
}
