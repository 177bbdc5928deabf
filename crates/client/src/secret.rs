//! Secrets enter the engine through [`SecretSource`]; the value lives in [`Secret`], which never prints itself.

use std::fmt;

/// A secret string. `Debug` and `Display` print `<redacted>`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where a secret comes from. The desktop app adds the OS keychain by resolving it to [`SecretSource::Value`].
#[derive(Clone, Debug)]
pub enum SecretSource {
    /// Use what the config file says (frp's behaviour).
    FromConfig,
    /// A value given directly.
    Value(Secret),
    /// An environment variable's value.
    Env(String),
    /// A file's contents (trailing newline trimmed).
    File(std::path::PathBuf),
}

/// A secret could not be read from its source.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Env var missing.
    #[error("environment variable {0} is not set: export it, or put the secret in the config")]
    MissingEnv(String),
    /// File unreadable.
    #[error("cannot read the secret file {path}: {source}")]
    File {
        /// The path.
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
}

impl SecretSource {
    /// Resolves the secret; `from_config` is the config file's value.
    pub fn resolve(&self, from_config: &str) -> Result<Secret, SecretError> {
        match self {
            SecretSource::FromConfig => Ok(Secret::new(from_config)),
            SecretSource::Value(s) => Ok(s.clone()),
            SecretSource::Env(name) => {
                std::env::var(name).map(Secret::new).map_err(|_| SecretError::MissingEnv(name.clone()))
            }
            SecretSource::File(p) => std::fs::read_to_string(p)
                .map(|s| Secret::new(s.trim_end_matches(['\r', '\n'])))
                .map_err(|source| SecretError::File { path: p.display().to_string(), source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "<redacted> <redacted>");
        assert_eq!(SecretSource::Value(s.clone()).resolve("x").unwrap().expose(), "hunter2");
        assert_eq!(SecretSource::FromConfig.resolve("x").unwrap().expose(), "x");
        assert!(format!("{:?}", SecretSource::Value(s)).contains("redacted"));
        assert!(SecretSource::Env("PORTWAY_SURELY_UNSET_VAR".into()).resolve("").is_err());
    }
}
