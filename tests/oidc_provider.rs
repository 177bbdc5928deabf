//! The test OIDC provider itself (tests/oidc/provider.mjs through tests/support/oidc.rs): it must look like
//! authentik (see the project's authentik notes) for the end-to-end tests to mean anything. Real HTTP on 127.0.0.1.

mod support;

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};
use support::oidc::*;

async fn bounded<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(90), f).await.expect("test timed out");
}

/// The path of `url`, which must be on the provider's 127.0.0.1 port.
fn path_of(p: &OidcProvider, url: &str) -> String {
    let origin = format!("http://127.0.0.1:{}/", p.port);
    let rest = url.strip_prefix(&origin).unwrap_or_else(|| panic!("{url} is not under {origin}"));
    format!("/{rest}")
}

async fn get(p: &OidcProvider, url: &str) -> HttpResponse {
    http_request(p.port, "GET", &path_of(p, url), &[], b"").await.expect("GET")
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                b' ' => "+".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// POSTs a form to the token endpoint, with extra headers (e.g. Authorization).
async fn token_request(p: &OidcProvider, headers: &[(&str, &str)], form: &[(&str, &str)]) -> HttpResponse {
    let mut all = vec![("Content-Type", "application/x-www-form-urlencoded")];
    all.extend_from_slice(headers);
    let body = form_encode(form);
    http_request(p.port, "POST", &path_of(p, p.token_endpoint()), &all, body.as_bytes()).await.expect("token POST")
}

/// A successful client_credentials grant with HTTP Basic; returns the response JSON.
async fn token_basic(p: &OidcProvider, id: &str, secret: &str, scope: Option<&str>) -> Value {
    let auth = basic(id, secret);
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    let r = token_request(p, &[("Authorization", &auth)], &form).await;
    assert_eq!(r.status, 200, "token request: {}", r.body);
    r.json()
}

/// (header, payload) of a compact JWS, decoded by hand.
fn jwt_parts(jwt: &str) -> (Value, Value) {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "not a compact JWS: {jwt}");
    let dec = |s: &str| -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s).expect("base64url")).expect("JSON in JWT part")
    };
    assert!(!parts[2].is_empty(), "unsigned JWT");
    (dec(parts[0]), dec(parts[1]))
}

/// An object's keys, sorted.
fn keys_of(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v.as_object().expect("a JSON object").keys().cloned().collect();
    keys.sort();
    keys
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs() as i64
}

async fn jwks(p: &OidcProvider) -> Value {
    let r = get(p, &format!("{}jwks/", p.issuer())).await;
    assert_eq!(r.status, 200, "JWKS: {}", r.body);
    r.json()
}

/// The kid of the one key the JWKS lists.
async fn only_kid(p: &OidcProvider) -> String {
    let keys = jwks(p).await["keys"].as_array().expect("keys array").clone();
    assert_eq!(keys.len(), 1, "JWKS should hold exactly one key: {keys:?}");
    keys[0]["kid"].as_str().expect("kid").to_owned()
}

fn assert_error(r: &HttpResponse, status: u16, error: &str) {
    assert_eq!(r.status, status, "want {status} {error}, got: {}", r.body);
    let v = r.json();
    assert_eq!(v["error"], error, "body: {}", r.body);
    assert!(v["error_description"].as_str().is_some_and(|d| !d.is_empty()), "no error_description: {}", r.body);
}

#[tokio::test]
async fn discovery_jwks_and_token_endpoint_look_like_authentik() {
    bounded(async {
        let p = OidcProvider::start(OidcOptions::default()).await;
        let issuer = format!("http://127.0.0.1:{}/application/o/frp/", p.port);
        assert_eq!(p.issuer(), issuer);
        assert_eq!(p.token_endpoint(), format!("http://127.0.0.1:{}/application/o/token/", p.port));
        assert_eq!(p.discovery_url(), format!("{issuer}.well-known/openid-configuration"));

        let r = get(&p, &p.discovery_url()).await;
        assert_eq!(r.status, 200, "discovery: {}", r.body);
        let d = r.json();
        assert_eq!(d["issuer"].as_str(), Some(issuer.as_str()), "issuer byte for byte");
        assert_eq!(d["jwks_uri"].as_str(), Some(format!("{issuer}jwks/").as_str()));
        assert_eq!(d["token_endpoint"].as_str(), Some(p.token_endpoint()));
        assert_eq!(d["token_endpoint_auth_methods_supported"], json!(["client_secret_post", "client_secret_basic"]));
        assert_eq!(d["id_token_signing_alg_values_supported"], json!(["RS256"]));
        assert!(d["grant_types_supported"].as_array().expect("grants").contains(&json!("client_credentials")));

        // The advertised jwks_uri answers with one RS256 signing key.
        let r = get(&p, d["jwks_uri"].as_str().expect("jwks_uri")).await;
        assert_eq!(r.status, 200, "jwks_uri: {}", r.body);
        let keys = r.json()["keys"].as_array().expect("keys").clone();
        assert_eq!(keys.len(), 1, "{keys:?}");
        let k = &keys[0];
        assert_eq!(
            (&k["kty"], &k["alg"], &k["use"], &k["e"]),
            (&json!("RSA"), &json!("RS256"), &json!("sig"), &json!("AQAB"))
        );
        assert_eq!(k["kid"].as_str().expect("kid").len(), 86, "authentik-shaped kid: {k}");
        assert!(k.get("d").is_none(), "private key material in the JWKS: {k}");

        // The advertised token endpoint is form POST only; GET is 405 as in authentik.
        let r = get(&p, d["token_endpoint"].as_str().expect("token_endpoint")).await;
        assert_eq!(r.status, 405);
        let r = token_request(
            &p,
            &[("Authorization", &basic(CLIENT_ID, CLIENT_SECRET))],
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        // Unknown paths are 404, including a per-application token path authentik does not have.
        let r = http_request(p.port, "POST", "/application/o/frp/token/", &[], b"").await.expect("POST");
        assert_eq!(r.status, 404);
    })
    .await;
}

#[tokio::test]
async fn client_credentials_with_basic_and_with_form_post() {
    bounded(async {
        let p = OidcProvider::start(OidcOptions::default()).await;
        let kid = only_kid(&p).await;

        let by_basic = token_basic(&p, CLIENT_ID, CLIENT_SECRET, None).await;
        let r = token_request(
            &p,
            &[],
            &[("grant_type", "client_credentials"), ("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET)],
        )
        .await;
        assert_eq!(r.status, 200, "client_secret_post: {}", r.body);
        let by_post = r.json();

        let mut subs = Vec::new();
        let mut uids = Vec::new();
        for v in [&by_basic, &by_post] {
            assert_eq!(keys_of(v), ["access_token", "expires_in", "id_token", "scope", "token_type"], "{v}");
            assert_eq!((&v["token_type"], &v["scope"], &v["expires_in"]), (&json!("Bearer"), &json!(""), &json!(3600)));

            let (h, c) = jwt_parts(v["access_token"].as_str().expect("access_token"));
            assert_eq!(h, json!({ "alg": "RS256", "typ": "JWT", "kid": kid }), "header");
            let want = ["acr", "aud", "auth_time", "azp", "exp", "iat", "iss", "jti", "scope", "sub", "uid"];
            assert_eq!(keys_of(&c), want, "claims: {c}");
            assert_eq!(c["iss"].as_str(), Some(p.issuer()));
            assert_eq!(c["aud"], CLIENT_ID, "aud is the client_id as a string");
            assert_eq!(c["azp"], CLIENT_ID);
            assert_eq!(c["acr"], AUTHENTIK_ACR);
            assert_eq!(c["scope"], "");
            let iat = c["iat"].as_i64().expect("iat");
            assert!((iat - now()).abs() <= 5, "iat {iat} is not now");
            assert_eq!(c["exp"].as_i64().expect("exp") - iat, 3600);
            assert_eq!(c["auth_time"].as_i64(), Some(iat));
            assert!(c["jti"].as_str().is_some_and(|j| j.len() >= 20), "jti: {c}");
            let sub = c["sub"].as_str().expect("sub");
            assert!(sub.len() == 64 && sub.bytes().all(|b| b.is_ascii_hexdigit()), "sub is a hex hash: {sub}");
            subs.push(sub.to_owned());
            uids.push(c["uid"].as_str().expect("uid").to_owned());

            let (ih, ic) = jwt_parts(v["id_token"].as_str().expect("id_token"));
            assert_eq!(ih["kid"].as_str(), Some(kid.as_str()));
            assert_eq!((&ic["iss"], &ic["sub"], &ic["aud"]), (&c["iss"], &c["sub"], &c["aud"]));
        }
        assert_eq!(subs[0], subs[1], "sub is stable per client");
        assert_ne!(uids[0], uids[1], "uid is random per token");

        let other = token_basic(&p, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET, None).await;
        let (_, c) = jwt_parts(other["access_token"].as_str().expect("access_token"));
        assert_eq!(c["aud"], OTHER_CLIENT_ID);
        assert_ne!(c["sub"].as_str(), Some(subs[0].as_str()), "another client, another sub");
        assert_eq!(p.tokens_issued().await, 3);
    })
    .await;
}

#[tokio::test]
async fn scopes_are_filtered_and_audience_is_ignored() {
    bounded(async {
        let p = OidcProvider::start(OidcOptions::default()).await;
        let v = token_basic(&p, CLIENT_ID, CLIENT_SECRET, Some("openid bogus profile goauthentik.io/api")).await;
        assert_eq!(v["scope"], "openid profile", "unknown scopes silently dropped: {v}");
        let (_, c) = jwt_parts(v["access_token"].as_str().expect("access_token"));
        assert_eq!(c["scope"], "openid profile");
        assert_eq!(c["preferred_username"], "ak-frp-client_credentials");

        let v = token_basic(&p, CLIENT_ID, CLIENT_SECRET, Some("nothing-known")).await;
        assert_eq!(v["scope"], "");

        // `audience` is accepted (and logged) but aud stays the client_id, as authentik does.
        let auth = basic(CLIENT_ID, CLIENT_SECRET);
        let form = [("grant_type", "client_credentials"), ("audience", "https://frps.example")];
        let r = token_request(&p, &[("Authorization", &auth)], &form).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let (_, c) = jwt_parts(r.json()["access_token"].as_str().expect("access_token"));
        assert_eq!(c["aud"], CLIENT_ID);
        assert!(p.log().contains("https://frps.example"), "audience not logged:\n{}", p.log());

        // When Basic is present it wins over form credentials (authentik's extract_client_auth).
        let form = [("grant_type", "client_credentials"), ("client_id", OTHER_CLIENT_ID), ("client_secret", "nope")];
        let r = token_request(&p, &[("Authorization", &auth)], &form).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let (_, c) = jwt_parts(r.json()["access_token"].as_str().expect("access_token"));
        assert_eq!(c["aud"], CLIENT_ID);
    })
    .await;
}

#[tokio::test]
async fn errors_are_authentiks() {
    bounded(async {
        let p = OidcProvider::start(OidcOptions::default()).await;
        let cc = ("grant_type", "client_credentials");
        let wrong = basic(CLIENT_ID, "wrong");
        let empty = basic(CLIENT_ID, "");
        let unknown = basic("nobody", "x");
        let good = basic(CLIENT_ID, CLIENT_SECRET);

        let r = token_request(&p, &[("Authorization", &wrong)], &[cc]).await;
        assert_error(&r, 400, "invalid_grant");
        assert!(r.header("www-authenticate").is_none(), "authentik sends no WWW-Authenticate");
        assert!(r.json()["request_id"].as_str().is_some(), "{}", r.body);
        assert_error(&token_request(&p, &[("Authorization", &empty)], &[cc]).await, 400, "invalid_grant");
        let post = |secret: &'static str| [cc, ("client_id", CLIENT_ID), ("client_secret", secret)];
        assert_error(&token_request(&p, &[], &post("wrong")).await, 400, "invalid_grant");
        assert_error(&token_request(&p, &[], &post("")).await, 400, "invalid_grant");
        assert_error(&token_request(&p, &[], &[cc, ("client_id", CLIENT_ID)]).await, 400, "invalid_grant");

        assert_error(&token_request(&p, &[("Authorization", &unknown)], &[cc]).await, 400, "invalid_client");
        let unknown_post = [cc, ("client_id", "nobody"), ("client_secret", "x")];
        assert_error(&token_request(&p, &[], &unknown_post).await, 400, "invalid_client");
        assert_error(&token_request(&p, &[], &[cc]).await, 400, "invalid_client");

        let r = token_request(&p, &[("Authorization", &good)], &[("grant_type", "password")]).await;
        assert_error(&r, 400, "unsupported_grant_type");
        assert_error(&token_request(&p, &[("Authorization", &good)], &[]).await, 400, "unsupported_grant_type");

        // A JSON body carries no form credentials: invalid_client, as in authentik.
        let body =
            json!({ "grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET });
        let r = http_request(
            p.port,
            "POST",
            "/application/o/token/",
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
        .await
        .expect("POST");
        assert_error(&r, 400, "invalid_client");

        assert_eq!(p.tokens_issued().await, 0, "refused requests issue nothing");
    })
    .await;
}

#[tokio::test]
async fn native_errors_keep_oidc_provider_wording() {
    bounded(async {
        let p = OidcProvider::start(OidcOptions { native_errors: true, ..Default::default() }).await;
        let cc = ("grant_type", "client_credentials");
        let r = token_request(&p, &[("Authorization", &basic(CLIENT_ID, "wrong"))], &[cc]).await;
        assert_error(&r, 401, "invalid_client");
        let r = token_request(&p, &[], &[cc, ("client_id", CLIENT_ID), ("client_secret", "wrong")]).await;
        assert_error(&r, 401, "invalid_client");
        let r = token_request(&p, &[("Authorization", &basic("nobody", "x"))], &[cc]).await;
        assert_error(&r, 401, "invalid_client");
        let r =
            token_request(&p, &[("Authorization", &basic(CLIENT_ID, CLIENT_SECRET))], &[("grant_type", "password")])
                .await;
        assert_error(&r, 400, "unsupported_grant_type");
        token_basic(&p, CLIENT_ID, CLIENT_SECRET, None).await;
    })
    .await;
}

#[tokio::test]
async fn rotate_key_replaces_the_only_key() {
    bounded(async {
        let p = OidcProvider::start(OidcOptions::default()).await;
        let old = only_kid(&p).await;
        let (h, _) =
            jwt_parts(token_basic(&p, CLIENT_ID, CLIENT_SECRET, None).await["access_token"].as_str().expect("at"));
        assert_eq!(h["kid"].as_str(), Some(old.as_str()));

        let new = p.rotate_key().await;
        assert_ne!(new, old);
        assert_eq!(only_kid(&p).await, new, "JWKS lists only the new key");
        let (h, c) =
            jwt_parts(token_basic(&p, CLIENT_ID, CLIENT_SECRET, None).await["access_token"].as_str().expect("at"));
        assert_eq!(h["kid"].as_str(), Some(new.as_str()));
        assert_eq!(c["iss"].as_str(), Some(p.issuer()));
    })
    .await;
}

#[tokio::test]
async fn ttl_sets_the_lifetime_and_count_counts() {
    bounded(async {
        let mut p = OidcProvider::start(OidcOptions { ttl: 600, ..Default::default() }).await;
        assert_eq!(p.tokens_issued().await, 0);
        let lifetime = |v: &Value| {
            let (_, c) = jwt_parts(v["access_token"].as_str().expect("access_token"));
            (
                v["expires_in"].as_i64().expect("expires_in"),
                c["exp"].as_i64().expect("exp") - c["iat"].as_i64().expect("iat"),
            )
        };
        assert_eq!(lifetime(&token_basic(&p, CLIENT_ID, CLIENT_SECRET, None).await), (600, 600));
        assert_eq!(p.tokens_issued().await, 1);

        p.set_ttl(5).await;
        assert_eq!(lifetime(&token_basic(&p, CLIENT_ID, CLIENT_SECRET, None).await), (5, 5));
        assert_eq!(lifetime(&token_basic(&p, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET, None).await), (5, 5));
        assert_eq!(p.tokens_issued().await, 3);
    })
    .await;
}

#[tokio::test]
async fn restart_keeps_port_issuer_key_and_ttl() {
    bounded(async {
        let mut p = OidcProvider::start(OidcOptions::default()).await;
        let (port, issuer) = (p.port, p.issuer().to_owned());
        p.set_ttl(77).await;
        let before = token_basic(&p, CLIENT_ID, CLIENT_SECRET, None).await;
        let kid = only_kid(&p).await;

        p.restart().await;
        assert_eq!((p.port, p.issuer()), (port, issuer.as_str()));
        assert_eq!(only_kid(&p).await, kid, "the key file carried the signing key over");
        assert_eq!(p.tokens_issued().await, 0, "a fresh process");
        let after = token_basic(&p, CLIENT_ID, CLIENT_SECRET, None).await;
        assert_eq!(after["expires_in"], 77);
        let (h, _) = jwt_parts(after["access_token"].as_str().expect("at"));
        let (h0, _) = jwt_parts(before["access_token"].as_str().expect("at"));
        assert_eq!(h, h0);

        p.stop().await;
        assert!(
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err(),
            "port {port} still answers after stop"
        );
    })
    .await;
}

#[tokio::test]
async fn explicit_key_file_survives_a_new_provider() {
    bounded(async {
        let dir = std::env::temp_dir().join(format!("portway-oidc-keyfile-{}", std::process::id()));
        let key_file = dir.join("sub/keys.json");
        let _ = std::fs::remove_dir_all(&dir);
        let opts = OidcOptions { key_file: Some(key_file.clone()), ..Default::default() };
        let first = OidcProvider::start(opts.clone()).await;
        let kid = only_kid(&first).await;
        let rotated = first.rotate_key().await;
        assert_ne!(rotated, kid);
        drop(first);
        let keys: Value = serde_json::from_slice(&std::fs::read(&key_file).expect("key file")).expect("JWK set");
        assert_eq!(keys["keys"][0]["kid"].as_str(), Some(rotated.as_str()));

        let second = OidcProvider::start(opts).await;
        assert_eq!(only_kid(&second).await, rotated);
        drop(second);
        assert!(key_file.exists(), "a caller's key file is not the helper's to delete");
        std::fs::remove_dir_all(&dir).expect("clean up");
    })
    .await;
}

#[tokio::test]
async fn es256_slug_and_custom_clients() {
    bounded(async {
        let clients = vec![("svc:a b".to_owned(), "p@ss:w/rd %".to_owned())];
        let opts = OidcOptions { alg: "ES256".into(), slug: "my-app".into(), clients, ..Default::default() };
        let p = OidcProvider::start(opts).await;
        assert_eq!(p.issuer(), format!("http://127.0.0.1:{}/application/o/my-app/", p.port));
        let d = get(&p, &p.discovery_url()).await.json();
        assert_eq!(d["issuer"].as_str(), Some(p.issuer()));
        assert_eq!(d["id_token_signing_alg_values_supported"], json!(["ES256"]));
        let keys = jwks(&p).await["keys"].clone();
        assert_eq!(
            (&keys[0]["kty"], &keys[0]["crv"], &keys[0]["alg"]),
            (&json!("EC"), &json!("P-256"), &json!("ES256"))
        );

        // Basic credentials are percent-decoded (authentik unquotes them).
        let auth = format!("Basic {}", STANDARD.encode("svc%3Aa%20b:p%40ss%3Aw%2Frd%20%25"));
        let r = token_request(&p, &[("Authorization", &auth)], &[("grant_type", "client_credentials")]).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let (h, c) = jwt_parts(r.json()["access_token"].as_str().expect("at"));
        assert_eq!((&h["alg"], &h["typ"]), (&json!("ES256"), &json!("JWT")));
        assert_eq!(c["aud"], "svc:a b");
        let form = [("grant_type", "client_credentials"), ("client_id", "svc:a b"), ("client_secret", "p@ss:w/rd %")];
        assert_eq!(token_request(&p, &[], &form).await.status, 200);
        // The default clients are not there when a list is given.
        let r = token_request(
            &p,
            &[("Authorization", &basic(CLIENT_ID, CLIENT_SECRET))],
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_error(&r, 400, "invalid_client");
    })
    .await;
}

#[tokio::test]
async fn issuer_follows_the_host_header_like_authentik() {
    bounded(async {
        let p = OidcProvider::start(OidcOptions::default()).await;
        let host = format!("localhost:{}", p.port);
        let auth = basic(CLIENT_ID, CLIENT_SECRET);
        let body = form_encode(&[("grant_type", "client_credentials")]);
        let headers =
            [("Host", host.as_str()), ("Authorization", &auth), ("Content-Type", "application/x-www-form-urlencoded")];
        let r = http_request(p.port, "POST", "/application/o/token/", &headers, body.as_bytes()).await.expect("POST");
        assert_eq!(r.status, 200, "{}", r.body);
        let (_, c) = jwt_parts(r.json()["access_token"].as_str().expect("at"));
        assert_eq!(c["iss"].as_str(), Some(format!("http://{host}/application/o/frp/").as_str()));
        assert_ne!(c["iss"].as_str(), Some(p.issuer()));
    })
    .await;
}
