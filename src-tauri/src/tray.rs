//! The tray as a pure function of the engine status and the language: which icon, what the menu says. Tested
//! without a desktop.

use portway_client::{ConnState, Status};

use crate::i18n::{explain_reason, explain_visitor_reason, fmt, text, Lang, Msg};

/// The four tray icons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayIcon {
    /// Grey.
    Disconnected,
    /// Amber.
    Connecting,
    /// Green.
    Connected,
    /// Red.
    Error,
}

impl TrayIcon {
    /// The icon file under `icons/tray/`.
    pub fn file(self) -> &'static str {
        match self {
            TrayIcon::Disconnected => "disconnected.png",
            TrayIcon::Connecting => "connecting.png",
            TrayIcon::Connected => "connected.png",
            TrayIcon::Error => "error.png",
        }
    }
}

/// What the tray shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrayModel {
    /// The icon.
    pub icon: TrayIcon,
    /// The first (disabled) menu line, also the tooltip.
    pub state_line: String,
    /// "Connect" or "Disconnect": the toggle calls the same controller method as the window's button.
    pub toggle_label: &'static str,
}

/// One profile's submenu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileItem {
    /// The profile's id (menu ids derive from it).
    pub id: String,
    /// The submenu's title: name and state.
    pub title: String,
    /// The state line inside the submenu.
    pub state_line: String,
    /// "Connect" or "Disconnect".
    pub toggle_label: &'static str,
    /// The profile's visitors, each a check item that turns it on or off.
    pub visitors: Vec<VisitorItem>,
}

/// One visitor's check item in its profile's submenu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitorItem {
    /// The visitor's name (its menu id derives from it).
    pub name: String,
    /// Name, the local address to open, and a failure when there is one.
    pub label: String,
    /// Whether it is on (enabled).
    pub checked: bool,
}

/// A visitor of a profile, as the tray needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitorToggle {
    pub name: String,
    pub enabled: bool,
    /// `127.0.0.1:port` (None: no local port).
    pub local_addr: Option<String>,
}

/// The whole tray with several profiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrayMenu {
    /// The worst state of the profiles whose engine runs (grey when none runs).
    pub icon: TrayIcon,
    /// The tooltip: one line per running profile, or "disconnected".
    pub tooltip: String,
    /// One submenu per profile, in the profiles' order.
    pub profiles: Vec<ProfileItem>,
    /// Whether "Connect all" has something to do.
    pub can_connect_all: bool,
    /// Whether "Disconnect all" has something to do.
    pub can_disconnect_all: bool,
    /// The language of every label (also of the fixed items: Connect all, Open Portway, Quit).
    pub lang: Lang,
}

/// A profile's input to [`menu`]: id, name, status.
pub struct ProfileState<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub status: &'a Status,
    pub visitors: &'a [VisitorToggle],
}

fn severity(icon: TrayIcon) -> u8 {
    match icon {
        TrayIcon::Disconnected => 0,
        TrayIcon::Connected => 1,
        TrayIcon::Connecting => 2,
        TrayIcon::Error => 3,
    }
}

fn short_state(s: &Status, lang: Lang) -> &'static str {
    let m = match &s.conn {
        ConnState::Disconnected => Msg::ShortDisconnected,
        ConnState::Connecting { .. } => Msg::ShortConnecting,
        ConnState::Connected { .. } => Msg::ShortConnected,
        ConnState::Error { .. } => Msg::ShortError,
    };
    text(lang, m)
}

/// The tray for several profiles: a submenu per profile, the icon the worst state among the profiles that are
/// connected or trying to be (error, then connecting, then connected).
pub fn menu(profiles: &[ProfileState<'_>], lang: Lang) -> TrayMenu {
    let mut icon = TrayIcon::Disconnected;
    let mut lines = Vec::new();
    let mut items = Vec::new();
    let (mut idle, mut active) = (false, false);
    for p in profiles {
        let (m, state) = model_and_state(p.status, lang);
        let on = !matches!(p.status.conn, ConnState::Disconnected);
        if on && severity(m.icon) > severity(icon) {
            icon = m.icon;
        }
        if on {
            lines.push(fmt(lang, Msg::ProfileLine, &[("name", &p.name), ("state", &short_state(p.status, lang))]));
        }
        // The engine keeps retrying an error with a retry time: Disconnect stops it; a final error is idle.
        if m.toggle_label == text(lang, Msg::Connect) {
            idle = true;
        } else {
            active = true;
        }
        items.push(ProfileItem {
            id: p.id.to_string(),
            title: fmt(lang, Msg::ProfileTitle, &[("name", &p.name), ("state", &short_state(p.status, lang))]),
            state_line: state,
            toggle_label: m.toggle_label,
            visitors: p.visitors.iter().map(|v| visitor_item(v, p.status, lang)).collect(),
        });
    }
    let tooltip = if lines.is_empty() {
        fmt(lang, Msg::TrayLine, &[("state", &text(lang, Msg::StateDisconnected))])
    } else {
        format!("Portway\n{}", lines.join("\n"))
    };
    TrayMenu { icon, tooltip, profiles: items, can_connect_all: idle, can_disconnect_all: active, lang }
}

fn visitor_item(v: &VisitorToggle, s: &Status, lang: Lang) -> VisitorItem {
    let mut label = match &v.local_addr {
        Some(a) => format!("{} ({a})", v.name),
        None => v.name.clone(),
    };
    let failure = s.visitors.get(&v.name).and_then(|st| match &st.state {
        portway_client::VisitorState::Error { reason } => Some(reason.clone()),
        _ => st.last_error.clone(),
    });
    if let Some(why) = failure.filter(|_| v.enabled) {
        label = fmt(
            lang,
            Msg::VisitorFailed,
            &[("label", &label), ("reason", &short(&explain_visitor_reason(lang, &why)))],
        );
    }
    VisitorItem { name: v.name.clone(), label, checked: v.enabled }
}

/// Maps one profile's status to the tray's words and icon.
pub fn model(s: &Status, lang: Lang) -> TrayModel {
    model_and_state(s, lang).0
}

/// The model, and its state line without the "Portway: " in front (a profile's submenu line).
fn model_and_state(s: &Status, lang: Lang) -> (TrayModel, String) {
    let running = s.proxies.values().filter(|p| matches!(p.state, portway_client::ProxyState::Running { .. })).count();
    let (icon, state, toggle) = match &s.conn {
        ConnState::Disconnected => {
            (TrayIcon::Disconnected, text(lang, Msg::StateDisconnected).to_string(), Msg::Connect)
        }
        ConnState::Connecting { attempt } => (
            TrayIcon::Connecting,
            if *attempt > 1 {
                fmt(lang, Msg::StateConnectingAttempt, &[("attempt", attempt)])
            } else {
                text(lang, Msg::StateConnecting).to_string()
            },
            Msg::Disconnect,
        ),
        ConnState::Connected { .. } => (
            TrayIcon::Connected,
            fmt(lang, Msg::StateConnected, &[("running", &running), ("total", &s.proxies.len())]),
            Msg::Disconnect,
        ),
        ConnState::Error { reason, retry_in } => (
            TrayIcon::Error,
            match retry_in {
                Some(d) => fmt(
                    lang,
                    Msg::StateErrorRetrying,
                    &[("seconds", &d.as_secs().max(1)), ("reason", &short(&explain_reason(lang, reason)))],
                ),
                None => fmt(lang, Msg::StateError, &[("reason", &short(&explain_reason(lang, reason)))]),
            },
            if retry_in.is_some() { Msg::Disconnect } else { Msg::Connect },
        ),
    };
    let state_line = fmt(lang, Msg::TrayLine, &[("state", &state)]);
    (TrayModel { icon, state_line, toggle_label: text(lang, toggle) }, state)
}

fn short(s: &str) -> String {
    if s.chars().count() <= 80 {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(79).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn status(conn: ConnState) -> Status {
        let mut s = Status::new(["a".to_string(), "b".to_string()].into_iter());
        s.conn = conn;
        s
    }

    #[test]
    fn every_state_has_its_icon_and_labels() {
        let m = model(&status(ConnState::Disconnected), Lang::En);
        assert_eq!((m.icon, m.toggle_label), (TrayIcon::Disconnected, "Connect"));
        let m = model(&status(ConnState::Connecting { attempt: 3 }), Lang::En);
        assert_eq!((m.icon, m.toggle_label), (TrayIcon::Connecting, "Disconnect"));
        assert!(m.state_line.contains("attempt 3"));
        let m = model(&status(ConnState::Connected { run_id: "r".into(), since: SystemTime::now() }), Lang::En);
        assert_eq!((m.icon, m.toggle_label), (TrayIcon::Connected, "Disconnect"));
        assert!(m.state_line.contains("0 of 2 proxies"));
        let m = model(
            &status(ConnState::Error { reason: "x".repeat(200), retry_in: Some(Duration::from_secs(4)) }),
            Lang::En,
        );
        assert_eq!((m.icon, m.toggle_label), (TrayIcon::Error, "Disconnect"));
        assert!(m.state_line.contains("retrying in 4 s") && m.state_line.chars().count() < 140);
        let m = model(&status(ConnState::Error { reason: "bad secret".into(), retry_in: None }), Lang::En);
        assert_eq!((m.icon, m.toggle_label), (TrayIcon::Error, "Connect"));
        assert_eq!(TrayIcon::Connected.file(), "connected.png");
    }

    /// The icon is the worst state of the profiles that run; a disconnected profile does not count.
    #[test]
    fn several_profiles_show_the_worst_running_state() {
        let connected = status(ConnState::Connected { run_id: "r".into(), since: SystemTime::now() });
        let off = status(ConnState::Disconnected);
        let connecting = status(ConnState::Connecting { attempt: 1 });
        let failed = status(ConnState::Error { reason: "bad secret".into(), retry_in: None });
        let p = |id, name, status| ProfileState { id, name, status, visitors: &[] };
        let m = menu(&[p("a", "Home", &off), p("b", "Work", &off)], Lang::En);
        assert_eq!(m.icon, TrayIcon::Disconnected);
        assert_eq!(m.tooltip, "Portway: disconnected");
        assert!(m.can_connect_all && !m.can_disconnect_all);
        let m = menu(&[p("a", "Home", &connected), p("b", "Work", &off)], Lang::En);
        assert_eq!(m.icon, TrayIcon::Connected, "an idle profile does not make the icon grey");
        assert_eq!(m.profiles[0].title, "Home (connected)");
        assert_eq!(m.profiles[0].toggle_label, "Disconnect");
        assert_eq!(m.profiles[1].toggle_label, "Connect");
        assert!(m.tooltip.contains("Home: connected") && !m.tooltip.contains("Work"));
        assert!(m.can_connect_all && m.can_disconnect_all);
        let m = menu(&[p("a", "Home", &connected), p("b", "Work", &connecting)], Lang::En);
        assert_eq!(m.icon, TrayIcon::Connecting);
        assert!(!m.can_connect_all);
        let m = menu(&[p("a", "Home", &failed), p("b", "Work", &connecting), p("c", "Lab", &connected)], Lang::En);
        assert_eq!(m.icon, TrayIcon::Error);
        assert!(m.profiles[0].state_line.starts_with("error: bad secret"), "{:?}", m.profiles[0]);
    }

    /// The same menu in Chinese: every label the person reads changes, the names and the engine's own words do not.
    #[test]
    fn the_menu_speaks_the_chosen_language() {
        let connected = status(ConnState::Connected { run_id: "r".into(), since: SystemTime::now() });
        let off = status(ConnState::Disconnected);
        let p = |id, name, status| ProfileState { id, name, status, visitors: &[] };
        let zh = menu(&[p("a", "Home", &connected), p("b", "Work", &off)], Lang::ZhCn);
        let en = menu(&[p("a", "Home", &connected), p("b", "Work", &off)], Lang::En);
        assert_eq!(zh.profiles[0].title, "Home（已连接）");
        assert_eq!(zh.profiles[0].state_line, "已连接，2 个代理中 0 个在运行");
        assert_eq!((zh.profiles[0].toggle_label, zh.profiles[1].toggle_label), ("断开", "连接"));
        assert_eq!(zh.tooltip, "Portway\nHome：已连接");
        assert!(zh.can_connect_all && zh.can_disconnect_all, "the idle check works in Chinese too");
        assert_ne!(zh, en, "a language change changes the model (the tray is rebuilt)");
        assert_eq!((zh.icon, zh.lang), (en.icon, Lang::ZhCn));
        let m = model(
            &status(ConnState::Error { reason: "bad secret".into(), retry_in: Some(Duration::from_secs(4)) }),
            Lang::ZhCn,
        );
        // A reason the app does not recognise: a Chinese lead-in naming what failed, the engine's words after it.
        assert_eq!(m.state_line, "Portway：出错，4 秒后重试：与服务器的连接出错（bad secret）");
        assert_eq!(menu(&[p("b", "Work", &off)], Lang::ZhCn).tooltip, "Portway：已断开");
    }

    /// Each profile's submenu lists its visitors, checked when on, with the address to open and a failure.
    #[test]
    fn visitors_are_check_items_with_their_address() {
        let mut connected = status(ConnState::Connected { run_id: "r".into(), since: SystemTime::now() });
        let mut failed = portway_client::status::VisitorStatus::idle();
        failed.last_error = Some("the server refused the visitor for proxy \"alice.nas\": auth failed".into());
        connected.visitors.insert("nas".into(), failed);
        let toggles = [
            VisitorToggle { name: "lab".into(), enabled: false, local_addr: Some("127.0.0.1:6000".into()) },
            VisitorToggle { name: "nas".into(), enabled: true, local_addr: Some("127.0.0.1:4450".into()) },
            VisitorToggle { name: "relay".into(), enabled: true, local_addr: None },
        ];
        let one = [ProfileState { id: "a", name: "Home", status: &connected, visitors: &toggles }];
        let m = menu(&one, Lang::En);
        let v = &m.profiles[0].visitors;
        assert_eq!(
            v.iter().map(|x| (x.name.as_str(), x.checked)).collect::<Vec<_>>(),
            [("lab", false), ("nas", true), ("relay", true)]
        );
        assert_eq!(v[0].label, "lab (127.0.0.1:6000)");
        assert!(
            v[1].label.starts_with("nas (127.0.0.1:4450): failed: ") && v[1].label.contains("auth failed"),
            "{:?}",
            v[1]
        );
        assert_eq!(v[2].label, "relay");
        let zh = menu(&one, Lang::ZhCn);
        assert!(
            zh.profiles[0].visitors[1].label.starts_with("nas (127.0.0.1:4450)：失败："),
            "{:?}",
            zh.profiles[0].visitors[1]
        );
    }
}

/// A desktop notification for a transition, if it deserves one: the connection dropped unexpectedly, or it came
/// back after a drop. `was_connected` remembers whether this engine run ever connected.
/// `name` is the profile's; the title and body are in `lang` (the engine's reason stays as it is).
pub fn notification(
    prev: &Status,
    next: &Status,
    was_connected: &mut bool,
    name: &str,
    lang: Lang,
) -> Option<(String, String)> {
    let out = match (&prev.conn, &next.conn) {
        (ConnState::Connected { .. }, ConnState::Error { reason, .. }) => Some((
            fmt(lang, Msg::LostTitle, &[("name", &name)]),
            fmt(lang, Msg::LostBody, &[("reason", &explain_reason(lang, reason))]),
        )),
        (ConnState::Error { .. } | ConnState::Connecting { .. }, ConnState::Connected { .. }) if *was_connected => {
            Some((fmt(lang, Msg::BackTitle, &[("name", &name)]), text(lang, Msg::BackBody).to_string()))
        }
        _ => None,
    };
    match &next.conn {
        ConnState::Connected { .. } => *was_connected = true,
        ConnState::Disconnected => *was_connected = false,
        _ => {}
    }
    out
}

#[cfg(test)]
mod notification_tests {
    use super::*;
    use std::time::SystemTime;

    #[test]
    fn drop_and_recovery_notify_but_user_actions_do_not() {
        let st = |c: ConnState| {
            let mut s = Status::new(std::iter::empty());
            s.conn = c;
            s
        };
        let connected = st(ConnState::Connected { run_id: "r".into(), since: SystemTime::now() });
        let error = st(ConnState::Error { reason: "server closed the connection".into(), retry_in: None });
        let mut was = false;
        let en = Lang::En;
        assert!(
            notification(&st(ConnState::Connecting { attempt: 1 }), &connected, &mut was, "Home", en).is_none(),
            "first connect is not news"
        );
        let (t, b) = notification(&connected, &error, &mut was, "Home", en).unwrap();
        assert_eq!(t, "Portway, Home: connection lost");
        assert!(b.contains("server closed the connection"));
        let (t, _) = notification(&st(ConnState::Connecting { attempt: 2 }), &connected, &mut was, "Home", en).unwrap();
        assert_eq!(t, "Portway, Home: reconnected");
        assert!(
            notification(&connected, &st(ConnState::Disconnected), &mut was, "Home", en).is_none(),
            "user disconnect is quiet"
        );
        assert!(!was);
        // In Chinese: the title and the words translated, the engine's reason explained and kept.
        let (t, b) = notification(&connected, &error, &mut true, "Home", Lang::ZhCn).unwrap();
        assert_eq!(t, "Portway，Home：连接已断开");
        assert_eq!(b, "服务器关闭了连接（server closed the connection）。正在重新连接…");
    }
}
