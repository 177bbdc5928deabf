//! Privilege keys: how frp's token auth proves knowledge of `auth.token` without sending it.

use md5::{Digest, Md5};

/// `lowercase hex(md5(token + decimal timestamp))`, frp's `util.GetAuthKey`.
pub fn privilege_key(token: &str, timestamp: i64) -> String {
    let mut h = Md5::new();
    h.update(token.as_bytes());
    h.update(timestamp.to_string().as_bytes());
    hex::encode(h.finalize())
}

/// Constant-time comparison of a received privilege key against the expected one.
pub fn verify_privilege_key(token: &str, timestamp: i64, received: &str) -> bool {
    let expected = privilege_key(token, timestamp);
    let (a, b) = (expected.as_bytes(), received.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_frp_capture() {
        // From frp-captures/plain-nomux: token "t", timestamp 1795552826.
        assert_eq!(privilege_key("t", 1795552826), "95bd7e26c3608e2cf7fd327814f7b372");
    }

    #[test]
    fn empty_token_is_md5_of_timestamp() {
        // md5("0") computed independently.
        assert_eq!(privilege_key("", 0), "cfcd208495d565ef66e7dff9f98764da");
        assert!(verify_privilege_key("", 0, "cfcd208495d565ef66e7dff9f98764da"));
        assert!(!verify_privilege_key("x", 0, "cfcd208495d565ef66e7dff9f98764da"));
        assert!(!verify_privilege_key("", 0, "short"));
    }
}
