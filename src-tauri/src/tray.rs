//! The tray as a pure function of the engine status: which icon, what the menu says. Tested without a desktop.

use portway_client::{ConnState, Status};

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
}

/// A profile's input to [`menu`]: id, name, status.
pub struct ProfileState<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub status: &'a Status,
}

fn severity(icon: TrayIcon) -> u8 {
    match icon {
        TrayIcon::Disconnected => 0,
        TrayIcon::Connected => 1,
        TrayIcon::Connecting => 2,
        TrayIcon::Error => 3,
    }
}

fn short_state(s: &Status) -> &'static str {
    match &s.conn {
        ConnState::Disconnected => "disconnected",
        ConnState::Connecting { .. } => "connecting",
        ConnState::Connected { .. } => "connected",
        ConnState::Error { .. } => "error",
    }
}

/// The tray for several profiles: a submenu per profile, the icon the worst state among the profiles that are
/// connected or trying to be (error, then connecting, then connected).
pub fn menu(profiles: &[ProfileState<'_>]) -> TrayMenu {
    let mut icon = TrayIcon::Disconnected;
    let mut lines = Vec::new();
    let mut items = Vec::new();
    let (mut idle, mut active) = (false, false);
    for p in profiles {
        let m = model(p.status);
        let on = !matches!(p.status.conn, ConnState::Disconnected);
        if on && severity(m.icon) > severity(icon) {
            icon = m.icon;
        }
        if on {
            lines.push(format!("{}: {}", p.name, short_state(p.status)));
        }
        // The engine keeps retrying an error with a retry time: Disconnect stops it; a final error is idle.
        if m.toggle_label == "Connect" {
            idle = true;
        } else {
            active = true;
        }
        let state = m.state_line.strip_prefix("Portway: ").unwrap_or(&m.state_line).to_string();
        items.push(ProfileItem {
            id: p.id.to_string(),
            title: format!("{} ({})", p.name, short_state(p.status)),
            state_line: state,
            toggle_label: m.toggle_label,
        });
    }
    let tooltip =
        if lines.is_empty() { "Portway: disconnected".to_string() } else { format!("Portway\n{}", lines.join("\n")) };
    TrayMenu { icon, tooltip, profiles: items, can_connect_all: idle, can_disconnect_all: active }
}

/// Maps one profile's status to the tray's words and icon.
pub fn model(s: &Status) -> TrayModel {
    let running = s.proxies.values().filter(|p| matches!(p.state, portway_client::ProxyState::Running { .. })).count();
    match &s.conn {
        ConnState::Disconnected => TrayModel {
            icon: TrayIcon::Disconnected,
            state_line: "Portway: disconnected".into(),
            toggle_label: "Connect",
        },
        ConnState::Connecting { attempt } => TrayModel {
            icon: TrayIcon::Connecting,
            state_line: if *attempt > 1 {
                format!("Portway: connecting (attempt {attempt})")
            } else {
                "Portway: connecting".into()
            },
            toggle_label: "Disconnect",
        },
        ConnState::Connected { .. } => TrayModel {
            icon: TrayIcon::Connected,
            state_line: format!("Portway: connected, {running} of {} proxies running", s.proxies.len()),
            toggle_label: "Disconnect",
        },
        ConnState::Error { reason, retry_in } => TrayModel {
            icon: TrayIcon::Error,
            state_line: match retry_in {
                Some(d) => format!("Portway: error, retrying in {} s: {}", d.as_secs().max(1), short(reason)),
                None => format!("Portway: error: {}", short(reason)),
            },
            toggle_label: if retry_in.is_some() { "Disconnect" } else { "Connect" },
        },
    }
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
        let m = model(&status(ConnState::Disconnected));
        assert_eq!((m.icon, m.toggle_label), (TrayIcon::Disconnected, "Connect"));
        let m = model(&status(ConnState::Connecting { attempt: 3 }));
        assert_eq!((m.icon, m.toggle_label), (TrayIcon::Connecting, "Disconnect"));
        assert!(m.state_line.contains("attempt 3"));
        let m = model(&status(ConnState::Connected { run_id: "r".into(), since: SystemTime::now() }));
        assert_eq!((m.icon, m.toggle_label), (TrayIcon::Connected, "Disconnect"));
        assert!(m.state_line.contains("0 of 2 proxies"));
        let m = model(&status(ConnState::Error { reason: "x".repeat(200), retry_in: Some(Duration::from_secs(4)) }));
        assert_eq!((m.icon, m.toggle_label), (TrayIcon::Error, "Disconnect"));
        assert!(m.state_line.contains("retrying in 4 s") && m.state_line.chars().count() < 140);
        let m = model(&status(ConnState::Error { reason: "bad secret".into(), retry_in: None }));
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
        let p = |id, name, status| ProfileState { id, name, status };
        let m = menu(&[p("a", "Home", &off), p("b", "Work", &off)]);
        assert_eq!(m.icon, TrayIcon::Disconnected);
        assert_eq!(m.tooltip, "Portway: disconnected");
        assert!(m.can_connect_all && !m.can_disconnect_all);
        let m = menu(&[p("a", "Home", &connected), p("b", "Work", &off)]);
        assert_eq!(m.icon, TrayIcon::Connected, "an idle profile does not make the icon grey");
        assert_eq!(m.profiles[0].title, "Home (connected)");
        assert_eq!(m.profiles[0].toggle_label, "Disconnect");
        assert_eq!(m.profiles[1].toggle_label, "Connect");
        assert!(m.tooltip.contains("Home: connected") && !m.tooltip.contains("Work"));
        assert!(m.can_connect_all && m.can_disconnect_all);
        let m = menu(&[p("a", "Home", &connected), p("b", "Work", &connecting)]);
        assert_eq!(m.icon, TrayIcon::Connecting);
        assert!(!m.can_connect_all);
        let m = menu(&[p("a", "Home", &failed), p("b", "Work", &connecting), p("c", "Lab", &connected)]);
        assert_eq!(m.icon, TrayIcon::Error);
        assert!(m.profiles[0].state_line.starts_with("error: bad secret"), "{:?}", m.profiles[0]);
    }
}

/// A desktop notification for a transition, if it deserves one: the connection dropped unexpectedly, or it came
/// back after a drop. `was_connected` remembers whether this engine run ever connected.
pub fn notification(prev: &Status, next: &Status, was_connected: &mut bool) -> Option<(&'static str, String)> {
    let out = match (&prev.conn, &next.conn) {
        (ConnState::Connected { .. }, ConnState::Error { reason, .. }) => {
            Some(("Portway: connection lost", format!("{reason}. Reconnecting…")))
        }
        (ConnState::Error { .. } | ConnState::Connecting { .. }, ConnState::Connected { .. }) if *was_connected => {
            Some(("Portway: reconnected", "The tunnel is back.".to_string()))
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
        assert!(
            notification(&st(ConnState::Connecting { attempt: 1 }), &connected, &mut was).is_none(),
            "first connect is not news"
        );
        let (t, b) = notification(&connected, &error, &mut was).unwrap();
        assert_eq!(t, "Portway: connection lost");
        assert!(b.contains("server closed the connection"));
        let (t, _) = notification(&st(ConnState::Connecting { attempt: 2 }), &connected, &mut was).unwrap();
        assert_eq!(t, "Portway: reconnected");
        assert!(notification(&connected, &st(ConnState::Disconnected), &mut was).is_none(), "user disconnect is quiet");
        assert!(!was);
    }
}
