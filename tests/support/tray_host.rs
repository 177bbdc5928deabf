//! A tray host on the session D-Bus, as a desktop panel runs one: a StatusNotifierWatcher
//! (`org.kde.StatusNotifierWatcher`) that apps register their tray item with. The desktop app's tray (tray-icon over
//! libayatana-appindicator) registers with it and exports its item (`org.kde.StatusNotifierItem`: the icon) and its
//! menu (`com.canonical.dbusmenu`: labels, enabled flags, submenus), which this host reads the way a panel does.
//! Without a watcher on the bus the indicator falls back to an XEmbed icon that nothing under Xvfb can read.
//!
//! What it cannot read: the tooltip. tray-icon ignores tooltips on Linux (libappindicator has none), so the
//! tooltip's text is covered by the tray model's unit tests (`src-tauri/src/tray.rs`), not here.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{Structure, Value};
use zbus::{interface, Connection};

const WATCHER: &str = "org.kde.StatusNotifierWatcher";

/// The registered items as (bus name, object path).
type Items = Arc<Mutex<Vec<(String, String)>>>;

struct Watcher {
    items: Items,
}

#[interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    /// `service` is a bus name (the item at `/StatusNotifierItem`) or, as libappindicator sends, an object path
    /// on the caller's connection.
    async fn register_status_notifier_item(
        &self,
        service: &str,
        #[zbus(header)] header: Header<'_>,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) {
        let sender = header.sender().map(|s| s.to_string()).unwrap_or_default();
        let item = if service.starts_with('/') {
            (sender, service.to_string())
        } else {
            (service.to_string(), "/StatusNotifierItem".to_string())
        };
        let full = format!("{}{}", item.0, item.1);
        {
            let mut items = self.items.lock().expect("items");
            items.retain(|i| *i != item);
            items.push(item);
        }
        let _ = Self::status_notifier_item_registered(&emitter, &full).await;
    }

    fn register_status_notifier_host(&self, _service: &str) {}

    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        self.items.lock().expect("items").iter().map(|(n, p)| format!("{n}{p}")).collect()
    }

    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }

    #[zbus(signal)]
    async fn status_notifier_item_registered(emitter: &SignalEmitter<'_>, service: &str) -> zbus::Result<()>;
}

/// One menu entry as a panel would draw it.
#[derive(Debug, Clone, PartialEq)]
pub struct MenuEntry {
    pub label: String,
    pub enabled: bool,
    pub children: Vec<MenuEntry>,
}

impl MenuEntry {
    /// The entry (at any depth) whose label starts with `prefix`.
    pub fn find(&self, prefix: &str) -> Option<&MenuEntry> {
        self.children.iter().find_map(|c| if c.label.starts_with(prefix) { Some(c) } else { c.find(prefix) })
    }

    /// Every label, indented by depth (for failure messages).
    pub fn outline(&self) -> String {
        fn walk(e: &MenuEntry, depth: usize, out: &mut String) {
            for c in &e.children {
                out.push_str(&format!("{}{}{}\n", "  ".repeat(depth), c.label, if c.enabled { "" } else { " [off]" }));
                walk(c, depth + 1, out);
            }
        }
        let mut out = String::new();
        walk(self, 0, &mut out);
        out
    }
}

/// What the tray shows: the icon's pixels (RGBA, 8 bits) and the menu.
#[derive(Debug, Clone)]
pub struct TrayState {
    pub icon_file: String,
    pub icon_rgba: Vec<u8>,
    pub menu: MenuEntry,
}

/// The running watcher; the name is released when it is dropped.
pub struct TrayHost {
    conn: Connection,
    items: Items,
}

impl TrayHost {
    /// Owns `org.kde.StatusNotifierWatcher` on the session bus. Panics when another watcher owns it (a desktop
    /// session's panel): the test then needs a session of its own.
    pub async fn start() -> TrayHost {
        let items = Items::default();
        let conn = zbus::connection::Builder::session()
            .expect("the session D-Bus address")
            .name(WATCHER)
            .expect("the watcher's name")
            .replace_existing_names(false)
            .serve_at("/StatusNotifierWatcher", Watcher { items: items.clone() })
            .expect("serve the watcher")
            .build()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "cannot own {WATCHER} on the session bus ({e}): another tray host runs there; run the test in a \
                     session of its own (dbus-run-session, as scripts/test.sh does)"
                )
            });
        TrayHost { conn, items }
    }

    /// The tray item registered by the app, waiting up to `within`.
    pub async fn item(&self, within: Duration) -> (String, String) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(item) = self.items.lock().expect("items").last().cloned() {
                return item;
            }
            assert!(Instant::now() < deadline, "no tray item registered with the watcher within {within:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Reads the item's icon (the PNG file its `IconName` names, as tray-icon writes it) and its whole menu.
    pub async fn read(&self, within: Duration) -> Result<TrayState, String> {
        let (name, path) = self.item(within).await;
        // No property cache: libappindicator announces changes with its own signals (NewIcon), not
        // PropertiesChanged, so a cached value would go stale.
        let item = zbus::proxy::Builder::<zbus::Proxy<'_>>::new(&self.conn)
            .destination(name.as_str())
            .and_then(|b| b.path(path.as_str()))
            .and_then(|b| b.interface("org.kde.StatusNotifierItem"))
            .map_err(|e| format!("item proxy: {e}"))?
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await
            .map_err(|e| format!("item proxy: {e}"))?;
        let icon_file: String = item.get_property("IconName").await.map_err(|e| format!("IconName: {e}"))?;
        let menu_path: zbus::zvariant::OwnedObjectPath =
            item.get_property("Menu").await.map_err(|e| format!("Menu: {e}"))?;
        let png = std::fs::read(&icon_file).map_err(|e| format!("the icon file {icon_file}: {e}"))?;
        let icon_rgba = rgba8(&png).map_err(|e| format!("the icon file {icon_file}: {e}"))?;
        let reply = self
            .conn
            .call_method(
                Some(name.as_str()),
                menu_path.as_str(),
                Some("com.canonical.dbusmenu"),
                "GetLayout",
                &(0i32, -1i32, Vec::<&str>::new()),
            )
            .await
            .map_err(|e| format!("GetLayout: {e}"))?;
        // The reply is `(u revision, (ia{sv}av) layout)`.
        let body = reply.body();
        let reply: Structure<'_> = body.deserialize().map_err(|e| format!("GetLayout's reply: {e}"))?;
        let layout = reply.fields().get(1).ok_or("GetLayout's reply has no layout")?;
        Ok(TrayState { icon_file, icon_rgba, menu: entry(layout) })
    }

    /// Polls the tray until `pred` holds; panics after `within` with what it showed last.
    pub async fn wait(&self, within: Duration, what: &str, pred: impl Fn(&TrayState) -> bool) -> TrayState {
        let deadline = Instant::now() + within;
        loop {
            let last = self.read(within).await;
            if let Ok(s) = &last {
                if pred(s) {
                    return s.clone();
                }
            }
            if Instant::now() > deadline {
                match last {
                    Ok(s) => panic!(
                        "waited {within:?} for the tray to show {what}; its icon is {}, its menu:\n{}",
                        s.icon_file,
                        s.menu.outline()
                    ),
                    Err(e) => panic!("waited {within:?} for the tray to show {what}; reading it failed: {e}"),
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A dbusmenu layout node `(id, properties, children)`: its `label` and `enabled` (default true), and its
/// children (each a variant holding a node). Separators have no label and are left out.
fn entry(v: &Value<'_>) -> MenuEntry {
    let v = match v {
        Value::Value(inner) => inner.as_ref(),
        other => other,
    };
    let mut e = MenuEntry { label: String::new(), enabled: true, children: Vec::new() };
    let Value::Structure(s) = v else { return e };
    let fields = s.fields();
    if let Some(Value::Dict(props)) = fields.get(1) {
        for (k, val) in props.iter() {
            let val = match val {
                Value::Value(inner) => inner.as_ref(),
                other => other,
            };
            match (k, val) {
                (Value::Str(k), Value::Str(label)) if k.as_str() == "label" => {
                    e.label = label.as_str().replace('_', "")
                }
                (Value::Str(k), Value::Bool(on)) if k.as_str() == "enabled" => e.enabled = *on,
                _ => {}
            }
        }
    }
    if let Some(Value::Array(children)) = fields.get(2) {
        e.children = children.inner().iter().map(entry).filter(|c| !c.label.is_empty()).collect();
    }
    e
}

/// The pixels of a PNG as 8-bit RGBA.
pub fn rgba8(png_bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(|e| e.to_string())?;
    let mut buf = vec![0; reader.output_buffer_size().ok_or("image too large")?];
    let info = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
    buf.truncate(info.buffer_size());
    Ok(match info.color_type {
        png::ColorType::Rgba => buf,
        png::ColorType::Rgb => buf.chunks(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect(),
        png::ColorType::GrayscaleAlpha => buf.chunks(2).flat_map(|p| [p[0], p[0], p[0], p[1]]).collect(),
        png::ColorType::Grayscale => buf.iter().flat_map(|&g| [g, g, g, 255]).collect(),
        png::ColorType::Indexed => return Err("an indexed PNG after expansion".into()),
    })
}

/// Which of `candidates` (name, RGBA) `rgba` is closest to (sum of absolute differences), for "which icon shows".
pub fn closest<'a>(rgba: &[u8], candidates: &'a [(&'a str, Vec<u8>)]) -> &'a str {
    candidates
        .iter()
        .filter(|(_, c)| c.len() == rgba.len())
        .min_by_key(|(_, c)| c.iter().zip(rgba).map(|(a, b)| a.abs_diff(*b) as u64).sum::<u64>())
        .map(|(n, _)| *n)
        .unwrap_or("(no icon of that size)")
}
