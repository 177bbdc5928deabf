//! The secret in the OS keychain (Secret Service on Linux, Keychain on macOS, Credential Manager on Windows),
//! through `keyring`. "No entry" is `Ok(None)`; "no keychain" is an error that says how to fix it. There is no
//! plain-text fallback.

use keyring::Entry;

/// The keychain service name.
pub const SERVICE: &str = "portway";

/// Why the keychain could not be used.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum KeychainError {
    /// No usable keychain (e.g. no Secret Service on the D-Bus session).
    #[error("the system keychain is not available ({0}). On Linux, install and unlock a Secret Service provider (gnome-keyring or KeePassXC) in your desktop session; Portway never stores the secret in a file")]
    Unavailable(String),
    /// Anything else.
    #[error("the system keychain refused the operation: {0}")]
    Other(String),
}

impl KeychainError {
    /// `KeychainStatus.code`: `unavailable` (no keychain answers) or `refused`.
    pub fn code(&self) -> &'static str {
        match self {
            KeychainError::Unavailable(_) => "unavailable",
            KeychainError::Other(_) => "refused",
        }
    }

    /// The keychain's own words.
    pub fn detail(&self) -> &str {
        match self {
            KeychainError::Unavailable(d) | KeychainError::Other(d) => d,
        }
    }
}

fn map(e: keyring::Error) -> KeychainError {
    match e {
        keyring::Error::PlatformFailure(e) => KeychainError::Unavailable(e.to_string()),
        keyring::Error::NoStorageAccess(e) => KeychainError::Unavailable(e.to_string()),
        other => KeychainError::Other(other.to_string()),
    }
}

/// One stored secret, by account name (the profile's client ID, or "token").
pub struct Keychain {
    account: String,
}

impl Keychain {
    /// The entry for `account`.
    pub fn new(account: &str) -> Keychain {
        Keychain { account: if account.is_empty() { "default".into() } else { account.to_string() } }
    }

    fn entry(&self) -> Result<Entry, KeychainError> {
        Entry::new(SERVICE, &self.account).map_err(map)
    }

    /// The stored secret, if any.
    pub fn get(&self) -> Result<Option<String>, KeychainError> {
        match self.entry()?.get_password() {
            Ok(s) => Ok(Some(s)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map(e)),
        }
    }

    /// Stores (or replaces) the secret.
    pub fn set(&self, secret: &str) -> Result<(), KeychainError> {
        self.entry()?.set_password(secret).map_err(map)
    }

    /// Deletes the secret; deleting nothing is fine.
    pub fn delete(&self) -> Result<(), KeychainError> {
        match self.entry()?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(map(e)),
        }
    }

    /// Whether a keychain answers at all (a lookup of an entry that need not exist).
    pub fn probe() -> Result<(), KeychainError> {
        Keychain::new("__portway_probe__").get().map(|_| ())
    }
}
