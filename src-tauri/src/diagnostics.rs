//! The window's "Check": the engine's step-by-step diagnostics ([`portway_client::diagnose`]) run with the form's
//! profile and the typed secret, or the stored one when none is typed (the same rule as Test sign-in).

use portway_client::diagnose::{check, Step};
use portway_client::{Secret, SecretSource};

use crate::controller::AppError;
use crate::profile::Profile;

/// Runs the check. `stored` reads the secret from the keychain; it is called only when no secret was typed.
///
/// # Errors
/// `no_secret` when OIDC is chosen and there is no secret at all; the keychain's errors from `stored`. A failing
/// step is not an error: it is in the returned steps.
pub async fn run(
    profile: &Profile,
    typed: Option<String>,
    stored: impl FnOnce() -> Result<Option<String>, AppError>,
) -> Result<Vec<Step>, AppError> {
    let secret = match typed.filter(|s| !s.is_empty()) {
        Some(s) => s,
        None => stored()?.unwrap_or_default(),
    };
    if secret.is_empty() && profile.auth.method == "oidc" {
        return Err(AppError::new("no_secret", "enter the client secret to run the check (it is not stored yet)"));
    }
    let cfg = profile.to_client_config();
    Ok(check(&cfg, &SecretSource::Value(Secret::new(secret))).await)
}
