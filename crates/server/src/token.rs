//! Access-token verification, pure: a JWT, the provider's keys, the policy and `now` in; claims or a precise
//! refusal out. No IO, so every rule is unit-tested on tokens the tests sign themselves.
//!
//! Rules: only asymmetric JWS algorithms (RS*, PS*, ES*, EdDSA); `alg: none` and HMAC are refused outright (an
//! HMAC token "signed" with a public key is the classic key-confusion attack). The key is chosen by `kid`, and
//! must itself be compatible with the token's algorithm. Then `iss` (exact), `aud` (when configured), `exp` and
//! `nbf` with a small leeway.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::{CoreJsonWebKey, CoreJwsSigningAlgorithm};
use openidconnect::JsonWebKey;
use serde::Deserialize;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: i64 = 30;

/// What the server requires of a token.
#[derive(Debug, Clone)]
pub struct TokenPolicy {
    /// `auth.oidc.issuer`, compared byte for byte with `iss`.
    pub issuer: String,
    /// `auth.oidc.audience`: when non-empty, `aud` must contain it.
    pub audience: String,
    /// `auth.oidc.skipExpiryCheck`.
    pub skip_expiry_check: bool,
    /// `auth.oidc.skipIssuerCheck`.
    pub skip_issuer_check: bool,
    /// Clock skew tolerated on `exp` and `nbf`, seconds (`portway.tokenLeeway`, default [`LEEWAY_SECS`]).
    pub leeway: i64,
}

/// The claims Portway uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    /// `iss`.
    pub issuer: String,
    /// `sub`.
    pub subject: String,
    /// `aud`, as a list.
    pub audience: Vec<String>,
    /// `azp`, else `client_id`.
    pub client_id: String,
    /// `exp` (seconds since the epoch), 0 when absent and expiry is not checked.
    pub expires_at: i64,
    /// `scope`.
    pub scope: String,
}

/// Why a token was refused. Messages go back to the client: they name the rule, never the token.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Not three base64url parts with JSON inside.
    #[error("the access token is not a well-formed JWT ({0}); the provider must issue JWT access tokens")]
    Malformed(&'static str),
    /// `alg: none`.
    #[error("the access token is unsigned (alg \"none\"); refused")]
    AlgNone,
    /// HS256/384/512.
    #[error("the access token is HMAC-signed ({0}); only asymmetric signatures are accepted: give the provider a signing key (authentik: Provider → Signing Key)")]
    Hmac(String),
    /// Something else.
    #[error("the access token's algorithm {0:?} is not supported (use RS256, PS256, ES256 or EdDSA)")]
    UnsupportedAlg(String),
    /// `kid` not in the JWKS.
    #[error("the access token was signed by an unknown key (kid {0:?}); the provider's key set does not contain it")]
    UnknownKey(String),
    /// Signature did not verify.
    #[error("the access token's signature is invalid (tampered token, or signed by another provider)")]
    BadSignature,
    /// `iss` differs.
    #[error("the access token's issuer {got:?} is not the server's auth.oidc.issuer {expected:?}")]
    WrongIssuer {
        /// Configured.
        expected: String,
        /// In the token.
        got: String,
    },
    /// `aud` lacks the audience.
    #[error("the access token's audience {got:?} does not include the server's auth.oidc.audience {expected:?}")]
    WrongAudience {
        /// Configured.
        expected: String,
        /// In the token.
        got: Vec<String>,
    },
    /// `exp` passed.
    #[error("the access token expired {0} s ago; the client must fetch a new one")]
    Expired(i64),
    /// No `exp`.
    #[error("the access token has no expiry (exp); refused")]
    NoExpiry,
    /// `nbf` in the future.
    #[error("the access token is not valid yet (nbf is {0} s ahead); check the clocks")]
    NotYetValid(i64),
}

#[derive(Deserialize)]
struct Header {
    alg: Option<String>,
    kid: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Aud {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize, Default)]
struct RawClaims {
    #[serde(default)]
    iss: String,
    #[serde(default)]
    sub: String,
    aud: Option<Aud>,
    exp: Option<f64>,
    nbf: Option<f64>,
    #[serde(default)]
    azp: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    scope: Option<serde_json::Value>,
}

fn signing_alg(alg: &str) -> Result<CoreJwsSigningAlgorithm, TokenError> {
    use CoreJwsSigningAlgorithm as A;
    Ok(match alg {
        "RS256" => A::RsaSsaPkcs1V15Sha256,
        "RS384" => A::RsaSsaPkcs1V15Sha384,
        "RS512" => A::RsaSsaPkcs1V15Sha512,
        "PS256" => A::RsaSsaPssSha256,
        "PS384" => A::RsaSsaPssSha384,
        "PS512" => A::RsaSsaPssSha512,
        "ES256" => A::EcdsaP256Sha256,
        "ES384" => A::EcdsaP384Sha384,
        "ES512" => A::EcdsaP521Sha512,
        "EdDSA" => A::EdDsa,
        "none" | "None" | "NONE" | "" => return Err(TokenError::AlgNone),
        a if a.to_ascii_uppercase().starts_with("HS") => return Err(TokenError::Hmac(a.to_string())),
        a => return Err(TokenError::UnsupportedAlg(a.to_string())),
    })
}

/// The `kid` a token names, if it parses that far (to decide whether to refetch the JWKS).
pub fn token_kid(token: &str) -> Option<String> {
    let h = token.split('.').next()?;
    let h: Header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
    h.kid
}

/// Verifies `token` against `keys` and `policy` at time `now` (seconds since the epoch).
pub fn verify(token: &str, keys: &[CoreJsonWebKey], policy: &TokenPolicy, now: i64) -> Result<Claims, TokenError> {
    let mut parts = token.split('.');
    let (Some(h64), Some(p64), Some(s64), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed("expected three dot-separated parts"));
    };
    let header: Header = serde_json::from_slice(
        &URL_SAFE_NO_PAD.decode(h64).map_err(|_| TokenError::Malformed("header is not base64url"))?,
    )
    .map_err(|_| TokenError::Malformed("header is not JSON"))?;
    let alg = signing_alg(header.alg.as_deref().unwrap_or(""))?;
    let sig = URL_SAFE_NO_PAD.decode(s64).map_err(|_| TokenError::Malformed("signature is not base64url"))?;
    let signing_input = &token.as_bytes()[..h64.len() + 1 + p64.len()];
    let candidates: Vec<&CoreJsonWebKey> = match &header.kid {
        Some(kid) => keys.iter().filter(|k| k.key_id().map(|id| id.as_str()) == Some(kid.as_str())).collect(),
        None => keys.iter().collect(),
    };
    if candidates.is_empty() {
        return Err(TokenError::UnknownKey(header.kid.unwrap_or_default()));
    }
    // verify_signature also refuses a key whose type or own `alg` does not fit the token's algorithm.
    if !candidates.iter().any(|k| k.verify_signature(&alg, signing_input, &sig).is_ok()) {
        return Err(TokenError::BadSignature);
    }
    let raw: RawClaims = serde_json::from_slice(
        &URL_SAFE_NO_PAD.decode(p64).map_err(|_| TokenError::Malformed("payload is not base64url"))?,
    )
    .map_err(|_| TokenError::Malformed("payload is not a JSON object of claims"))?;
    if !policy.skip_issuer_check && raw.iss != policy.issuer {
        return Err(TokenError::WrongIssuer { expected: policy.issuer.clone(), got: raw.iss });
    }
    let audience = match raw.aud {
        Some(Aud::One(a)) => vec![a],
        Some(Aud::Many(v)) => v,
        None => vec![],
    };
    if !policy.audience.is_empty() && !audience.iter().any(|a| a == &policy.audience) {
        return Err(TokenError::WrongAudience { expected: policy.audience.clone(), got: audience });
    }
    let exp = raw.exp.map(|e| e as i64);
    if !policy.skip_expiry_check {
        match exp {
            None => return Err(TokenError::NoExpiry),
            Some(e) if now > e + policy.leeway => return Err(TokenError::Expired(now - e)),
            _ => {}
        }
    }
    if let Some(nbf) = raw.nbf.map(|n| n as i64) {
        if nbf > now + policy.leeway {
            return Err(TokenError::NotYetValid(nbf - now));
        }
    }
    let scope = match raw.scope {
        Some(serde_json::Value::String(s)) => s,
        Some(serde_json::Value::Array(v)) => v.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(" "),
        _ => String::new(),
    };
    Ok(Claims {
        issuer: raw.iss,
        subject: raw.sub,
        audience,
        client_id: if raw.azp.is_empty() { raw.client_id } else { raw.azp },
        expires_at: exp.unwrap_or(0),
        scope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use openidconnect::core::{CoreHmacKey, CoreRsaPrivateSigningKey};
    use openidconnect::{JsonWebKeyId, PrivateSigningKey};
    use serde_json::json;

    const ISS: &str = "http://127.0.0.1:9000/application/o/frp/";
    const NOW: i64 = 1_800_000_000;

    fn rsa(kid: &str, pem: &str) -> CoreRsaPrivateSigningKey {
        CoreRsaPrivateSigningKey::from_pem(pem, Some(JsonWebKeyId::new(kid.into()))).unwrap()
    }

    fn key() -> CoreRsaPrivateSigningKey {
        rsa("k1", include_str!("../tests/fixtures/rsa-test-key.pem"))
    }

    fn b64(v: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    }

    fn claims() -> serde_json::Value {
        json!({"iss": ISS, "sub": "svc-1", "aud": "portway-test-client", "azp": "portway-test-client",
               "exp": NOW + 3600, "iat": NOW, "scope": ""})
    }

    fn sign(
        k: &impl PrivateSigningKey<VerificationKey = CoreJsonWebKey>,
        alg: CoreJwsSigningAlgorithm,
        alg_name: &str,
        kid: &str,
        c: &serde_json::Value,
    ) -> String {
        let input = format!("{}.{}", b64(&json!({"alg": alg_name, "kid": kid, "typ": "JWT"})), b64(c));
        let sig = k.sign(&alg, input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    fn rs256(c: &serde_json::Value) -> String {
        sign(&key(), CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256, "RS256", "k1", c)
    }

    fn policy() -> TokenPolicy {
        TokenPolicy {
            issuer: ISS.into(),
            audience: String::new(),
            skip_expiry_check: false,
            skip_issuer_check: false,
            leeway: LEEWAY_SECS,
        }
    }

    fn jwks() -> Vec<CoreJsonWebKey> {
        vec![key().as_verification_key()]
    }

    #[test]
    fn valid_token_gives_its_claims() {
        let c = verify(&rs256(&claims()), &jwks(), &policy(), NOW).unwrap();
        assert_eq!(c.subject, "svc-1");
        assert_eq!(c.client_id, "portway-test-client");
        assert_eq!(c.audience, vec!["portway-test-client".to_string()]);
        assert_eq!(c.expires_at, NOW + 3600);
    }

    #[test]
    fn ps256_verifies_too() {
        let t = sign(&key(), CoreJwsSigningAlgorithm::RsaSsaPssSha256, "PS256", "k1", &claims());
        assert!(verify(&t, &jwks(), &policy(), NOW).is_ok());
    }

    #[test]
    fn issuer_audience_expiry_and_nbf() {
        let mut c = claims();
        c["iss"] = json!("http://127.0.0.1:9000/application/o/other/");
        assert!(matches!(verify(&rs256(&c), &jwks(), &policy(), NOW), Err(TokenError::WrongIssuer { .. })));
        let mut p = policy();
        p.skip_issuer_check = true;
        assert!(verify(&rs256(&c), &jwks(), &p, NOW).is_ok());

        let mut p = policy();
        p.audience = "frps".into();
        assert!(matches!(verify(&rs256(&claims()), &jwks(), &p, NOW), Err(TokenError::WrongAudience { .. })));
        let mut c = claims();
        c["aud"] = json!(["x", "frps"]);
        assert!(verify(&rs256(&c), &jwks(), &p, NOW).is_ok());

        let t = rs256(&claims());
        assert!(verify(&t, &jwks(), &policy(), NOW + 3600 + LEEWAY_SECS).is_ok(), "within leeway");
        assert_eq!(verify(&t, &jwks(), &policy(), NOW + 3700), Err(TokenError::Expired(100)));
        let mut p = policy();
        p.skip_expiry_check = true;
        assert!(verify(&t, &jwks(), &p, NOW + 99_999).is_ok());

        let mut c = claims();
        c["nbf"] = json!(NOW + 600);
        assert_eq!(verify(&rs256(&c), &jwks(), &policy(), NOW), Err(TokenError::NotYetValid(600)));
        let mut c = claims();
        c.as_object_mut().unwrap().remove("exp");
        assert_eq!(verify(&rs256(&c), &jwks(), &policy(), NOW), Err(TokenError::NoExpiry));
    }

    #[test]
    fn tampered_payload_or_signature_is_refused() {
        let t = rs256(&claims());
        let parts: Vec<&str> = t.split('.').collect();
        let mut c = claims();
        c["sub"] = json!("admin");
        let forged = format!("{}.{}.{}", parts[0], b64(&c), parts[2]);
        assert_eq!(verify(&forged, &jwks(), &policy(), NOW), Err(TokenError::BadSignature));
        let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        sig[10] ^= 1;
        let flipped = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(sig));
        assert_eq!(verify(&flipped, &jwks(), &policy(), NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn other_providers_key_and_unknown_kid() {
        let other = rsa("k1", include_str!("../tests/fixtures/rsa-other-key.pem"));
        let t = sign(&other, CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256, "RS256", "k1", &claims());
        assert_eq!(verify(&t, &jwks(), &policy(), NOW), Err(TokenError::BadSignature));
        let t = sign(&key(), CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256, "RS256", "k2", &claims());
        assert_eq!(verify(&t, &jwks(), &policy(), NOW), Err(TokenError::UnknownKey("k2".into())));
        assert_eq!(token_kid(&t).as_deref(), Some("k2"));
    }

    #[test]
    fn alg_none_and_hmac_and_key_confusion_are_refused() {
        let none = format!("{}.{}.", b64(&json!({"alg": "none", "kid": "k1"})), b64(&claims()));
        assert_eq!(verify(&none, &jwks(), &policy(), NOW), Err(TokenError::AlgNone));
        // HS256 keyed with the RSA public key's bytes: the key-confusion trick.
        let public_n = serde_json::to_vec(&key().as_verification_key()).unwrap();
        let hmac = CoreHmacKey::new(public_n);
        let t = sign(&hmac, CoreJwsSigningAlgorithm::HmacSha256, "HS256", "k1", &claims());
        assert_eq!(verify(&t, &jwks(), &policy(), NOW), Err(TokenError::Hmac("HS256".into())));
        // An RSA signature presented as ES256 fails the key's compatibility check.
        let t = rs256(&claims()).replacen(
            &b64(&json!({"alg": "RS256", "kid": "k1", "typ": "JWT"})),
            &b64(&json!({"alg": "ES256", "kid": "k1", "typ": "JWT"})),
            1,
        );
        assert_eq!(verify(&t, &jwks(), &policy(), NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for t in ["", "a", "a.b", "a.b.c.d", "!!.!!.!!", "e30.e30.e30"] {
            assert!(verify(t, &jwks(), &policy(), NOW).is_err(), "{t}");
        }
    }
}
