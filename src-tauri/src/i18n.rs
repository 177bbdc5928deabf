//! The texts the backend itself shows (the tray's menu and tooltip, notifications, the name of a new profile) in
//! English and 简体中文, and the language choice stored with the app's options. The window has its own catalogue
//! (ui/src/i18n/); it tells the backend the choice and the OS locale it sees (`set_language`), so the tray relabels
//! at once. Every [`Msg`] has a text in each language (the matches are exhaustive); the unit test checks that no
//! text is empty and that both languages use the same `{placeholders}`.

use std::fmt::Display;

use serde::{Deserialize, Serialize};

/// What the person picked in the window's Options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LanguageChoice {
    /// Follow the OS locale (zh* → 简体中文, anything else → English).
    #[default]
    #[serde(rename = "auto")]
    Auto,
    /// English.
    #[serde(rename = "en")]
    En,
    /// 简体中文.
    #[serde(rename = "zh-CN")]
    ZhCn,
}

/// A language the backend speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// 简体中文.
    ZhCn,
}

impl LanguageChoice {
    /// `"auto"`, `"en"` or `"zh-CN"`.
    pub fn parse(s: &str) -> Option<LanguageChoice> {
        match s {
            "auto" => Some(LanguageChoice::Auto),
            "en" => Some(LanguageChoice::En),
            "zh-CN" => Some(LanguageChoice::ZhCn),
            _ => None,
        }
    }

    /// The stored spelling (the inverse of [`LanguageChoice::parse`]).
    pub fn as_str(self) -> &'static str {
        match self {
            LanguageChoice::Auto => "auto",
            LanguageChoice::En => "en",
            LanguageChoice::ZhCn => "zh-CN",
        }
    }

    /// The language to speak: the choice, or for Auto the OS locale's.
    pub fn resolve(self, os_locale: Option<&str>) -> Lang {
        match self {
            LanguageChoice::En => Lang::En,
            LanguageChoice::ZhCn => Lang::ZhCn,
            LanguageChoice::Auto => os_locale.map(lang_of_locale).unwrap_or_default(),
        }
    }
}

/// zh, zh-CN, zh_TW.UTF-8, zh-Hans… → 简体中文; anything else → English.
pub fn lang_of_locale(locale: &str) -> Lang {
    let primary = locale.trim().split(['-', '_', '.', '@']).next().unwrap_or("");
    if primary.eq_ignore_ascii_case("zh") {
        Lang::ZhCn
    } else {
        Lang::En
    }
}

/// The process's locale from the POSIX variables (LC_ALL, then LC_MESSAGES, then LANG), if one is set; "C" and
/// "POSIX" say nothing about a language. Until the window reports the OS locale this is what Auto follows.
pub fn env_locale() -> Option<String> {
    ["LC_ALL", "LC_MESSAGES", "LANG"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .find(|v| !v.is_empty())
        .filter(|v| v != "C" && v != "POSIX" && !v.starts_with("C."))
}

/// One text the backend shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Msg {
    /// The tray's first line and tooltip: "Portway: {state}".
    TrayLine,
    StateDisconnected,
    StateConnecting,
    StateConnectingAttempt,
    StateConnected,
    StateErrorRetrying,
    StateError,
    ShortDisconnected,
    ShortConnecting,
    ShortConnected,
    ShortError,
    /// A profile's submenu title.
    ProfileTitle,
    /// A profile's line in the tooltip.
    ProfileLine,
    Connect,
    Disconnect,
    ConnectAll,
    DisconnectAll,
    Open,
    Quit,
    LostTitle,
    LostBody,
    BackTitle,
    BackBody,
    /// The name of the profile a fresh install (or deleting the last one) starts with.
    DefaultProfileName,
    /// An engine error explained ([`explain_reason`]): "{explanation} ({reason})".
    Explained,
    ReasonRefused,
    ReasonTimeout,
    ReasonWrongToken,
    ReasonProvider,
    ReasonProviderUnreachable,
    ReasonClosed,
    /// An engine error the app does not recognise: the lead-in naming what failed, the original follows.
    ReasonConnection,
    /// A visitor's error the app does not recognise: the lead-in.
    ReasonVisitor,
    /// A visitor's check item in the tray when its last connection failed.
    VisitorFailed,
}

impl Msg {
    /// Every message (for the test).
    pub const ALL: [Msg; 34] = [
        Msg::TrayLine,
        Msg::StateDisconnected,
        Msg::StateConnecting,
        Msg::StateConnectingAttempt,
        Msg::StateConnected,
        Msg::StateErrorRetrying,
        Msg::StateError,
        Msg::ShortDisconnected,
        Msg::ShortConnecting,
        Msg::ShortConnected,
        Msg::ShortError,
        Msg::ProfileTitle,
        Msg::ProfileLine,
        Msg::Connect,
        Msg::Disconnect,
        Msg::ConnectAll,
        Msg::DisconnectAll,
        Msg::Open,
        Msg::Quit,
        Msg::LostTitle,
        Msg::LostBody,
        Msg::BackTitle,
        Msg::BackBody,
        Msg::DefaultProfileName,
        Msg::Explained,
        Msg::ReasonRefused,
        Msg::ReasonTimeout,
        Msg::ReasonWrongToken,
        Msg::ReasonProvider,
        Msg::ReasonProviderUnreachable,
        Msg::ReasonClosed,
        Msg::ReasonConnection,
        Msg::ReasonVisitor,
        Msg::VisitorFailed,
    ];
}

fn en(m: Msg) -> &'static str {
    match m {
        Msg::TrayLine => "Portway: {state}",
        Msg::StateDisconnected => "disconnected",
        Msg::StateConnecting => "connecting",
        Msg::StateConnectingAttempt => "connecting (attempt {attempt})",
        Msg::StateConnected => "connected, {running} of {total} proxies running",
        Msg::StateErrorRetrying => "error, retrying in {seconds} s: {reason}",
        Msg::StateError => "error: {reason}",
        Msg::ShortDisconnected => "disconnected",
        Msg::ShortConnecting => "connecting",
        Msg::ShortConnected => "connected",
        Msg::ShortError => "error",
        Msg::ProfileTitle => "{name} ({state})",
        Msg::ProfileLine => "{name}: {state}",
        Msg::Connect => "Connect",
        Msg::Disconnect => "Disconnect",
        Msg::ConnectAll => "Connect all",
        Msg::DisconnectAll => "Disconnect all",
        Msg::Open => "Open Portway",
        Msg::Quit => "Quit",
        Msg::LostTitle => "Portway, {name}: connection lost",
        Msg::LostBody => "{reason}. Reconnecting…",
        Msg::BackTitle => "Portway, {name}: reconnected",
        Msg::BackBody => "The tunnel is back.",
        Msg::DefaultProfileName => "My server",
        Msg::Explained => "{explanation} ({reason})",
        Msg::ReasonRefused => "the server refused the connection",
        Msg::ReasonTimeout => "the server did not answer in time",
        Msg::ReasonWrongToken => "the token does not match the server's",
        Msg::ReasonProvider => "the identity provider refused the client ID or secret",
        Msg::ReasonProviderUnreachable => "the identity provider cannot be reached",
        Msg::ReasonClosed => "the server closed the connection",
        Msg::ReasonConnection => "the connection to the server failed",
        Msg::ReasonVisitor => "the connection to the private service failed",
        Msg::VisitorFailed => "{label}: failed: {reason}",
    }
}

fn zh_cn(m: Msg) -> &'static str {
    match m {
        Msg::TrayLine => "Portway：{state}",
        Msg::StateDisconnected => "已断开",
        Msg::StateConnecting => "正在连接",
        Msg::StateConnectingAttempt => "正在连接（第 {attempt} 次尝试）",
        Msg::StateConnected => "已连接，{total} 个代理中 {running} 个在运行",
        Msg::StateErrorRetrying => "出错，{seconds} 秒后重试：{reason}",
        Msg::StateError => "出错：{reason}",
        Msg::ShortDisconnected => "已断开",
        Msg::ShortConnecting => "连接中",
        Msg::ShortConnected => "已连接",
        Msg::ShortError => "出错",
        Msg::ProfileTitle => "{name}（{state}）",
        Msg::ProfileLine => "{name}：{state}",
        Msg::Connect => "连接",
        Msg::Disconnect => "断开",
        Msg::ConnectAll => "全部连接",
        Msg::DisconnectAll => "全部断开",
        Msg::Open => "打开 Portway",
        Msg::Quit => "退出",
        Msg::LostTitle => "Portway，{name}：连接已断开",
        Msg::LostBody => "{reason}。正在重新连接…",
        Msg::BackTitle => "Portway，{name}：已重新连接",
        Msg::BackBody => "隧道已恢复。",
        Msg::DefaultProfileName => "我的服务器",
        Msg::Explained => "{explanation}（{reason}）",
        Msg::ReasonRefused => "服务器拒绝了连接",
        Msg::ReasonTimeout => "服务器没有及时响应",
        Msg::ReasonWrongToken => "令牌与服务器的不一致",
        Msg::ReasonProvider => "身份提供方拒绝了客户端 ID 或密钥",
        Msg::ReasonProviderUnreachable => "无法访问身份提供方",
        Msg::ReasonClosed => "服务器关闭了连接",
        Msg::ReasonConnection => "与服务器的连接出错",
        Msg::ReasonVisitor => "连接私有服务失败",
        Msg::VisitorFailed => "{label}：失败：{reason}",
    }
}

/// The text of `m` in `lang`, placeholders unfilled.
pub fn text(lang: Lang, m: Msg) -> &'static str {
    match lang {
        Lang::En => en(m),
        Lang::ZhCn => zh_cn(m),
    }
}

/// The text of `m` in `lang` with its `{name}` placeholders filled from `args`.
pub fn fmt(lang: Lang, m: Msg, args: &[(&str, &dyn Display)]) -> String {
    let mut out = text(lang, m).to_string();
    for (name, value) in args {
        out = out.replace(&format!("{{{name}}}"), &value.to_string());
    }
    out
}

/// An engine error (English text from the client) in `lang`: in English as it is; in another language a translated
/// explanation when the app recognises it, else a translated lead-in naming what failed, with the original in
/// parentheses (the tray, the notifications).
pub fn explain_reason(lang: Lang, reason: &str) -> String {
    explain_as(lang, reason, Msg::ReasonConnection)
}

/// A visitor's error in `lang`, as [`explain_reason`] (the lead-in names the private service).
pub fn explain_visitor_reason(lang: Lang, reason: &str) -> String {
    explain_as(lang, reason, Msg::ReasonVisitor)
}

fn explain_as(lang: Lang, reason: &str, lead: Msg) -> String {
    if lang == Lang::En {
        return reason.to_string();
    }
    let r = reason.to_ascii_lowercase();
    let m = if r.contains("cannot reach the token endpoint") {
        Msg::ReasonProviderUnreachable
    } else if r.contains("invalid_client") || r.contains("invalid_grant") || r.contains("unauthorized_client") {
        Msg::ReasonProvider
    } else if r.contains("authorization failed") || r.contains("auth.token does not match") {
        Msg::ReasonWrongToken
    } else if r.contains("connection refused") || r.contains("os error 111") {
        Msg::ReasonRefused
    } else if r.contains("timed out") || r.contains("timeout") {
        Msg::ReasonTimeout
    } else if r.contains("closed the connection") {
        Msg::ReasonClosed
    } else {
        lead
    };
    fmt(lang, Msg::Explained, &[("explanation", &text(lang, m)), ("reason", &reason)])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The `{name}` placeholders of a text, sorted and without repeats.
    pub(crate) fn placeholders(text: &str) -> Vec<&str> {
        let mut names: Vec<&str> =
            text.split('{').skip(1).filter_map(|rest| rest.split_once('}').map(|(name, _)| name)).collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    #[test]
    fn every_message_has_a_text_in_both_languages_with_the_same_placeholders() {
        for m in Msg::ALL {
            let (e, z) = (text(Lang::En, m), text(Lang::ZhCn, m));
            assert!(!e.trim().is_empty() && !z.trim().is_empty(), "{m:?} has an empty text");
            assert_eq!(placeholders(e), placeholders(z), "{m:?}: the placeholders differ between {e:?} and {z:?}");
            // Even the texts made of placeholders differ: Chinese punctuation is full-width.
            assert_ne!(e, z, "{m:?} is not translated");
        }
    }

    #[test]
    fn engine_errors_are_explained_in_chinese_with_the_original_kept() {
        let r = "connecting to 127.0.0.1:7000: Connection refused (os error 111)";
        assert_eq!(explain_reason(Lang::En, r), r);
        assert_eq!(explain_reason(Lang::ZhCn, r), format!("服务器拒绝了连接（{r}）"));
        let t = "authorization failed: the client's auth.token does not match the server's auth.token";
        assert!(explain_reason(Lang::ZhCn, t).starts_with("令牌与服务器的不一致（"));
        // Unknown: a lead-in in Chinese naming what failed, the original kept.
        assert_eq!(explain_reason(Lang::ZhCn, "something new"), "与服务器的连接出错（something new）");
        assert_eq!(explain_visitor_reason(Lang::ZhCn, "no such proxy"), "连接私有服务失败（no such proxy）");
        assert_eq!(explain_visitor_reason(Lang::En, "no such proxy"), "no such proxy");
    }

    #[test]
    fn fills_placeholders() {
        assert_eq!(fmt(Lang::En, Msg::StateConnectingAttempt, &[("attempt", &3)]), "connecting (attempt 3)");
        assert_eq!(fmt(Lang::ZhCn, Msg::ProfileTitle, &[("name", &"Home"), ("state", &"已连接")]), "Home（已连接）");
        assert_eq!(placeholders("{a} {b} {a}"), vec!["a", "b"]);
    }

    #[test]
    fn auto_follows_the_os_locale() {
        for l in ["zh_CN.UTF-8", "zh-CN", "zh_TW", "zh", "zh-Hans-CN"] {
            assert_eq!(LanguageChoice::Auto.resolve(Some(l)), Lang::ZhCn, "{l}");
        }
        for l in ["en_US.UTF-8", "de_DE", "", "zhx"] {
            assert_eq!(LanguageChoice::Auto.resolve(Some(l)), Lang::En, "{l}");
        }
        assert_eq!(LanguageChoice::Auto.resolve(None), Lang::En);
        assert_eq!(LanguageChoice::ZhCn.resolve(Some("en_US")), Lang::ZhCn);
        assert_eq!(LanguageChoice::En.resolve(Some("zh_CN")), Lang::En);
        for c in [LanguageChoice::Auto, LanguageChoice::En, LanguageChoice::ZhCn] {
            assert_eq!(LanguageChoice::parse(c.as_str()), Some(c));
        }
        assert_eq!(LanguageChoice::parse("fr"), None);
    }
}

/// The window's catalogues (ui/src/i18n/en.ts and zh-CN.ts) as the backend's tests read them: the codes the
/// backend sends for the window to translate (import skip reasons, error reasons, keychain problems) must have a
/// text in both, with a `{placeholder}` for each parameter.
#[cfg(test)]
pub(crate) mod ui_catalogue {
    const EN: &str = include_str!("../../ui/src/i18n/en.ts");
    const ZH_CN: &str = include_str!("../../ui/src/i18n/zh-CN.ts");

    /// The text of `key` in a catalogue's source (`"key": "text",`, the text possibly on the next line).
    pub fn text(source: &str, key: &str) -> Option<String> {
        let at = source.find(&format!("\"{key}\":"))? + key.len() + 3;
        let rest = source[at..].trim_start();
        let body = rest.strip_prefix('"')?;
        let mut end = None;
        let mut escaped = false;
        for (i, c) in body.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        serde_json::from_str(&format!("\"{}\"", &body[..end?])).ok()
    }

    /// Checks that `value` (a serialised `{ code, ...params }`) has the text `prefix.<code>` in English and
    /// Chinese, each naming exactly the parameters but `detail` (which the window shows under the sentence).
    pub fn assert_translated(prefix: &str, value: serde_json::Value) {
        let obj = value.as_object().unwrap_or_else(|| panic!("{value} is not an object"));
        let code = obj["code"].as_str().expect("a code");
        let key = format!("{prefix}.{code}");
        let mut params: Vec<&str> = obj.keys().map(String::as_str).filter(|k| *k != "code" && *k != "detail").collect();
        params.sort_unstable();
        for (lang, source) in [("en", EN), ("zh-CN", ZH_CN)] {
            let t = text(source, &key).unwrap_or_else(|| panic!("{key} has no text in ui/src/i18n/{lang}.ts"));
            assert!(!t.trim().is_empty(), "{key} is empty in {lang}");
            assert_eq!(super::tests::placeholders(&t), params, "{key} in {lang}: {t:?}");
        }
    }

    /// Every code the engine's "Check" gives a step (crates/client/src/diagnose.rs) has a summary in both of the
    /// window's languages (`diag.<step>.<code>`, or `diag.<code>` for every step).
    #[test]
    fn every_diagnostics_code_is_translated_in_the_window() {
        let source = include_str!("../../crates/client/src/diagnose.rs");
        let mut codes = Vec::new();
        for call in source.split("Step::new(").skip(1) {
            let Some(step) = call.trim_start().strip_prefix("StepKind::") else { continue };
            let step = step.split(|c: char| !c.is_ascii_alphanumeric()).next().unwrap_or("").to_ascii_lowercase();
            let after_outcome = call.split_once("Outcome::").map(|(_, r)| r).unwrap_or("");
            let arg = after_outcome.split_once(',').map(|(_, r)| r.trim_start()).unwrap_or("");
            if let Some(lit) = arg.strip_prefix('"') {
                codes.push((step, lit.split('"').next().unwrap_or("").to_string()));
            }
        }
        assert!(codes.len() >= 25, "the parser found only {codes:?}");
        // The codes chosen at run time (a `code` variable): the token step's OIDC failures and the login's.
        for c in ["wrongClient", "wrongSecret", "providerUnreachable", "setup", "provider", "badResponse"] {
            assert!(source.contains(&format!("\"{c}\"")), "{c} is no longer a code of the engine");
            codes.push(("token".into(), c.into()));
        }
        for c in ["wrongToken", "tokenRejected", "refused", "timeout", "connect"] {
            assert!(source.contains(&format!("\"{c}\"")), "{c} is no longer a code of the engine");
            codes.push(("login".into(), c.into()));
        }
        for (step, code) in codes {
            for (lang, src) in [("en", EN), ("zh-CN", ZH_CN)] {
                let t = text(src, &format!("diag.{step}.{code}")).or_else(|| text(src, &format!("diag.{code}")));
                assert!(t.is_some_and(|t| !t.trim().is_empty()), "diag.{step}.{code} has no text in {lang}");
            }
        }
    }

    #[test]
    fn reads_the_catalogue_format() {
        assert_eq!(text(EN, "conn.disconnected").as_deref(), Some("Disconnected"));
        assert!(text(EN, "oauth.invalid_client").is_some_and(|t| t.starts_with("The identity provider")));
        assert_eq!(
            text(EN, "form.domainScheme").as_deref(),
            Some("\"{d}\": give only the name, without http:// or https://")
        );
        assert_eq!(text(EN, "no.such.key"), None);
    }
}
