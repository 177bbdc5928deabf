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

/// Maps a status to the tray.
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
