//! The routing table of the virtual hosts (pure: no IO, no locks), with frp's lookup order.
//!
//! A route is keyed by (domain, location, routeByHTTPUser). A lookup tries the exact host, then wildcard forms
//! (`a.b.example.com` → `*.b.example.com` → `*.example.com` → `*.com`), then the catch-all `*`; for each host it
//! tries the request's HTTP user, then routes that do not route by user; within those, the longest location that
//! prefixes the path wins.

use std::collections::HashMap;

use base64::Engine;

/// frp's answer when (domain, location, routeByHTTPUser) is already taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("router config conflict")]
pub struct Conflict;

/// Routes by domain, then by HTTP user, then by location (longest first).
#[derive(Debug, Clone)]
pub struct Routes<T> {
    by_domain: HashMap<String, HashMap<String, Vec<(String, T)>>>,
}

impl<T> Default for Routes<T> {
    fn default() -> Self {
        Routes { by_domain: HashMap::new() }
    }
}

impl<T> Routes<T> {
    /// Adds a route; the domain is matched case-insensitively.
    pub fn add(&mut self, domain: &str, location: &str, user: &str, payload: T) -> Result<(), Conflict> {
        let users = self.by_domain.entry(domain.to_ascii_lowercase()).or_default();
        let list = users.entry(user.to_string()).or_default();
        if list.iter().any(|(l, _)| l == location) {
            return Err(Conflict);
        }
        list.push((location.to_string(), payload));
        // Longest first: among locations that all prefix one path, the longest is the most specific.
        list.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| b.0.cmp(&a.0)));
        Ok(())
    }

    /// The payload registered under exactly this key (no prefix or wildcard matching).
    pub fn get(&self, domain: &str, location: &str, user: &str) -> Option<&T> {
        let list = self.by_domain.get(&domain.to_ascii_lowercase())?.get(user)?;
        list.iter().find(|(l, _)| l == location).map(|(_, t)| t)
    }

    /// Removes a route (no-op if absent).
    pub fn remove(&mut self, domain: &str, location: &str, user: &str) {
        let domain = domain.to_ascii_lowercase();
        if let Some(users) = self.by_domain.get_mut(&domain) {
            if let Some(list) = users.get_mut(user) {
                list.retain(|(l, _)| l != location);
                if list.is_empty() {
                    users.remove(user);
                }
            }
            if users.is_empty() {
                self.by_domain.remove(&domain);
            }
        }
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.by_domain.values().flat_map(|u| u.values()).map(Vec::len).sum()
    }

    /// Whether there is no route.
    pub fn is_empty(&self) -> bool {
        self.by_domain.is_empty()
    }

    fn get_exact(&self, domain: &str, path: &str, user: &str) -> Option<&T> {
        let users = self.by_domain.get(domain)?;
        let find = |u: &str| users.get(u)?.iter().find(|(l, _)| path.starts_with(l.as_str())).map(|(_, t)| t);
        find(user).or_else(|| if user.is_empty() { None } else { find("") })
    }

    /// The route for a request: `host` already canonical (see [`canonical_host`]).
    pub fn lookup(&self, host: &str, path: &str, user: &str) -> Option<&T> {
        if let Some(t) = self.get_exact(host, path, user) {
            return Some(t);
        }
        let mut labels: Vec<&str> = host.split('.').collect();
        while labels.len() >= 3 {
            labels[0] = "*";
            if let Some(t) = self.get_exact(&labels.join("."), path, user) {
                return Some(t);
            }
            labels.remove(0);
        }
        self.get_exact("*", path, user)
    }
}

/// The host part of a `Host` header (or CONNECT authority): port and a trailing dot removed, lower case.
pub fn canonical_host(host: &str) -> String {
    let host = host.trim();
    let bare = if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        rest.split(']').next().unwrap_or("")
    } else {
        match host.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        }
    };
    bare.trim_end_matches('.').to_ascii_lowercase()
}

/// What a visitor is told the proxy is reachable at: `host` alone on 80/443, else `host:port` (frp's form).
pub fn public_addr(domain: &str, port: u16) -> String {
    if port == 80 || port == 443 {
        domain.to_string()
    } else {
        format!("{domain}:{port}")
    }
}

/// User and password of a `Basic` authorization value (scheme matched case-insensitively).
pub fn basic_auth(value: &[u8]) -> Option<(String, String)> {
    let s = std::str::from_utf8(value).ok()?.trim();
    let (scheme, rest) = s.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// frp's rule: a custom domain with more labels than `subDomainHost` that contains it is refused (it would
/// shadow subdomains handed to other clients). Compared case-insensitively.
pub fn under_subdomain_host(domain: &str, sub_domain_host: &str) -> bool {
    if sub_domain_host.is_empty() {
        return false;
    }
    let (d, h) = (domain.to_ascii_lowercase(), sub_domain_host.to_ascii_lowercase());
    h.split('.').count() < d.split('.').count() && d.contains(&h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_then_wildcards_then_catch_all_and_longest_location() {
        let mut r = Routes::default();
        r.add("web.example.com", "/", "", "web-root").unwrap();
        r.add("web.example.com", "/api", "", "web-api").unwrap();
        r.add("*.example.com", "", "", "wild").unwrap();
        assert_eq!(r.lookup("web.example.com", "/api/items", ""), Some(&"web-api"));
        assert_eq!(r.lookup("web.example.com", "/apix", ""), Some(&"web-api"), "frp matches by plain prefix");
        assert_eq!(r.lookup("web.example.com", "/index.html", ""), Some(&"web-root"));
        assert_eq!(r.lookup("other.example.com", "/x", ""), Some(&"wild"));
        assert_eq!(r.lookup("a.b.example.com", "/x", ""), Some(&"wild"), "*.example.com after *.b.example.com");
        assert_eq!(r.lookup("example.com", "/", ""), None, "a wildcard needs a label in its place");
        assert_eq!(r.lookup("nobody.test", "/", ""), None);
        r.add("*", "", "", "any").unwrap();
        assert_eq!(r.lookup("nobody.test", "/", ""), Some(&"any"));
        assert_eq!(r.len(), 4);
    }

    #[test]
    fn route_by_http_user_falls_back_to_routes_without_user() {
        let mut r = Routes::default();
        r.add("h.test", "/", "alice", "alice").unwrap();
        r.add("h.test", "/", "", "everyone").unwrap();
        assert_eq!(r.lookup("h.test", "/", "alice"), Some(&"alice"));
        assert_eq!(r.lookup("h.test", "/", "bob"), Some(&"everyone"));
        assert_eq!(r.lookup("h.test", "/", ""), Some(&"everyone"));
    }

    #[test]
    fn duplicates_conflict_and_removal_frees_the_key() {
        let mut r = Routes::default();
        r.add("Web.Example.com", "/", "", 1).unwrap();
        assert_eq!(r.add("web.example.com", "/", "", 2), Err(Conflict));
        assert_eq!(Conflict.to_string(), "router config conflict");
        r.add("web.example.com", "/api", "", 3).unwrap();
        assert_eq!(r.get("WEB.example.com", "/api", ""), Some(&3));
        assert_eq!(r.get("web.example.com", "/api/x", ""), None, "exact key only");
        r.remove("WEB.example.com", "/", "");
        assert_eq!(r.lookup("web.example.com", "/", ""), None);
        r.add("web.example.com", "/", "", 4).unwrap();
        r.remove("web.example.com", "/", "");
        r.remove("web.example.com", "/api", "");
        assert!(r.is_empty());
    }

    #[test]
    fn hosts_are_canonical() {
        assert_eq!(canonical_host("Web.Portway.Test:18080"), "web.portway.test");
        assert_eq!(canonical_host("web.portway.test."), "web.portway.test");
        assert_eq!(canonical_host("[::1]:80"), "::1");
        assert_eq!(canonical_host("::1"), "::1");
        assert_eq!(canonical_host(""), "");
        assert_eq!(public_addr("a.test", 80), "a.test");
        assert_eq!(public_addr("a.test", 18080), "a.test:18080");
    }

    #[test]
    fn basic_auth_values() {
        assert_eq!(basic_auth(b"Basic YWRtaW46YWRtaW4="), Some(("admin".into(), "admin".into())));
        assert_eq!(basic_auth(b"basic YWRtaW46bm9wZQ=="), Some(("admin".into(), "nope".into())));
        assert_eq!(basic_auth(b"Bearer x"), None);
        assert_eq!(basic_auth(b"Basic !!!"), None);
        assert_eq!(basic_auth(b"Basic YWRtaW4="), None, "no colon");
    }

    #[test]
    fn custom_domains_under_subdomain_host() {
        assert!(under_subdomain_host("web.example.test", "example.test"));
        assert!(under_subdomain_host("Web.EXAMPLE.test", "example.test"));
        assert!(!under_subdomain_host("example.test", "example.test"));
        assert!(!under_subdomain_host("web.portway.test", "example.test"));
        assert!(!under_subdomain_host("web.example.test", ""));
    }
}
