//! The Tauri application: commands (one line each, into the controller), tray, window and notifications.

use std::sync::Arc;

use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Emitter, Manager, RunEvent, State};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::controller::{AppError, Controller, KeychainLookup, KeychainStatus, ProfileSummary};
use crate::dto::StatusDto;
use crate::logs::{LogBuffer, LogLine};
use crate::profile::Profile;
use crate::tray;

type Ctl<'a> = State<'a, Arc<Controller>>;

#[tauri::command]
fn list_profiles(c: Ctl<'_>) -> Vec<ProfileSummary> {
    c.list()
}
#[tauri::command]
fn add_profile(c: Ctl<'_>, name: String) -> Result<ProfileSummary, AppError> {
    c.add_profile(&name)
}
#[tauri::command]
fn rename_profile(c: Ctl<'_>, id: String, name: String) -> Result<(), AppError> {
    c.rename_profile(&id, &name)
}
#[tauri::command]
async fn delete_profile(c: Ctl<'_>, id: String) -> Result<(), AppError> {
    c.delete_profile(&id).await
}
/// Runs a controller call that waits on the keychain (a D-Bus round trip per entry) on a blocking thread: a
/// plain command would run on the main thread and hold the window's drawing while the page loads.
async fn off_main<T: Send + 'static>(
    c: Ctl<'_>,
    f: impl FnOnce(&Controller) -> T + Send + 'static,
) -> Result<T, AppError> {
    let c = c.inner().clone();
    tokio::task::spawn_blocking(move || f(&c))
        .await
        .map_err(|e| AppError::new("internal", format!("a keychain lookup did not finish: {e}")))
}
// Stays on the main thread: run elsewhere, its answer came after the page's form had been drawn for a new profile
// and the form was drawn again under the typing (the WebDriver test lost a typed character).
#[tauri::command]
fn get_profile(c: Ctl<'_>, id: String) -> Result<Profile, AppError> {
    c.profile(&id)
}
#[tauri::command]
async fn save_profile(c: Ctl<'_>, id: String, profile: Profile) -> Result<Profile, AppError> {
    c.save_profile(&id, profile).await
}
#[tauri::command]
async fn set_secret(c: Ctl<'_>, id: String, secret: String) -> Result<(), AppError> {
    c.set_secret(&id, &secret).await
}
#[tauri::command]
async fn set_proxy_password(c: Ctl<'_>, id: String, name: String, password: String) -> Result<(), AppError> {
    c.set_proxy_password(&id, &name, &password).await
}
#[tauri::command]
async fn clear_proxy_password(c: Ctl<'_>, id: String, name: String) -> Result<(), AppError> {
    c.clear_proxy_password(&id, &name).await
}
#[tauri::command]
async fn set_proxy_secret_key(c: Ctl<'_>, id: String, name: String, secret: String) -> Result<(), AppError> {
    c.set_proxy_secret_key(&id, &name, &secret).await
}
#[tauri::command]
async fn set_visitor_secret_key(c: Ctl<'_>, id: String, name: String, secret: String) -> Result<(), AppError> {
    c.set_visitor_secret_key(&id, &name, &secret).await
}
#[tauri::command]
async fn set_visitor_enabled(c: Ctl<'_>, id: String, name: String, enabled: bool) -> Result<Profile, AppError> {
    c.set_visitor_enabled(&id, &name, enabled).await
}
#[tauri::command]
fn clear_secret(c: Ctl<'_>, id: String) -> Result<(), AppError> {
    c.clear_secret(&id)
}
/// The page's first state in one call (language, profiles, the first profile with its keychain flags, its status,
/// the log, the keychain's state). Everything but the keychain is in memory; the keychain's answers were asked for
/// when the window was built (see [`prefetch_keychain`]), while WebKit started the page, and are only awaited here.
#[tauri::command]
async fn page_start(app: AppHandle, c: Ctl<'_>) -> Result<crate::controller::PageStart, AppError> {
    let first = c.ids().into_iter().next().unwrap_or_default();
    let pending = app.state::<Prefetch>().0.lock().unwrap_or_else(|e| e.into_inner()).take();
    let opened = app.state::<Opened>().since();
    tracing::debug!(since_open_ms = ?opened, "window: the page asks for its first state");
    let prefetched = match pending {
        Some((id, task)) if id == first => task.await.ok(),
        _ => None,
    };
    let lookup = match prefetched {
        Some(l) => l,
        None => off_main(c.clone(), move |c| c.keychain_lookup(&first)).await?,
    };
    let start = c.page_start(lookup);
    tracing::debug!(since_open_ms = ?app.state::<Opened>().since(), "window: the page's first state answered");
    Ok(start)
}

/// When the window was last built again by [`show_main`]: the reopen's steps are logged at debug level with the
/// milliseconds since then (`RUST_LOG=portway=debug`), to tell which step a slow reopen spends its time in.
#[derive(Default)]
struct Opened(std::sync::Mutex<Option<std::time::Instant>>);

impl Opened {
    fn since(&self) -> Option<u64> {
        let at = *self.0.lock().unwrap_or_else(|e| e.into_inner());
        at.map(|t| t.elapsed().as_millis() as u64)
    }
}

/// The keychain lookups of the window's first picture, started as the window is built and taken by
/// [`page_start`]: (profile id, the lookup on a blocking thread).
#[derive(Default)]
struct Prefetch(std::sync::Mutex<Option<(String, tauri::async_runtime::JoinHandle<KeychainLookup>)>>);

/// Starts the first profile's keychain lookups on a blocking thread (each a D-Bus round trip to the Secret
/// Service): they run while WebKit starts its processes and loads the page, not after the page has asked.
fn prefetch_keychain(app: &AppHandle) {
    let c = app.state::<Arc<Controller>>().inner().clone();
    let Some(id) = c.ids().into_iter().next() else { return };
    let for_task = id.clone();
    let task = tauri::async_runtime::spawn_blocking(move || c.keychain_lookup(&for_task));
    *app.state::<Prefetch>().0.lock().unwrap_or_else(|e| e.into_inner()) = Some((id, task));
}

#[tauri::command]
async fn keychain_status(c: Ctl<'_>) -> Result<KeychainStatus, AppError> {
    off_main(c, Controller::keychain_status).await
}
#[tauri::command]
async fn connect(c: Ctl<'_>, id: String) -> Result<(), AppError> {
    c.connect(&id).await
}
#[tauri::command]
async fn disconnect(c: Ctl<'_>, id: String) -> Result<(), AppError> {
    c.disconnect(&id).await
}
#[tauri::command]
async fn connect_all(c: Ctl<'_>) -> Result<(), AppError> {
    let errors = c.connect_all().await;
    if errors.is_empty() {
        return Ok(());
    }
    let code = errors[0].1.code;
    let text = errors.iter().map(|(name, e)| format!("{name}: {}", e.message)).collect::<Vec<_>>().join("; ");
    let profiles = errors.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>().join(", ");
    Err(AppError::new(code, text).because(crate::controller::ErrorReason::NotAllConnected { profiles }))
}
#[tauri::command]
async fn disconnect_all(c: Ctl<'_>) -> Result<(), AppError> {
    c.disconnect_all().await;
    Ok(())
}
#[tauri::command]
fn get_status(c: Ctl<'_>, id: String) -> StatusDto {
    c.status_dto(&id, &c.status(&id))
}
#[tauri::command]
async fn test_sign_in(
    c: Ctl<'_>,
    id: String,
    profile: Profile,
    secret: Option<String>,
) -> Result<portway_client::oidc::TokenInfo, AppError> {
    c.test_sign_in(&id, profile, secret).await
}
#[tauri::command]
async fn diagnose(
    c: Ctl<'_>,
    id: String,
    profile: Profile,
    secret: Option<String>,
) -> Result<Vec<portway_client::diagnose::Step>, AppError> {
    c.diagnose(&id, profile, secret).await
}
#[tauri::command]
fn get_logs(c: Ctl<'_>) -> Vec<LogLine> {
    c.logs.snapshot()
}
#[tauri::command]
async fn import_frpc(c: Ctl<'_>, id: Option<String>, text: String) -> Result<crate::controller::Imported, AppError> {
    c.import_frpc(id.as_deref(), &text).await
}
#[tauri::command]
fn get_language(c: Ctl<'_>) -> &'static str {
    c.language_choice().as_str()
}
#[tauri::command]
fn set_language(c: Ctl<'_>, language: String, os_locale: String) -> Result<(), AppError> {
    c.set_language(&language, &os_locale)
}
#[tauri::command]
fn export_frpc(c: Ctl<'_>, id: String) -> Result<String, AppError> {
    c.export_frpc(&id)
}

fn tray_icon_image(icon: tray::TrayIcon) -> Option<tauri::image::Image<'static>> {
    let bytes: &'static [u8] = match icon {
        tray::TrayIcon::Disconnected => include_bytes!("../../icons/tray/disconnected.png"),
        tray::TrayIcon::Connecting => include_bytes!("../../icons/tray/connecting.png"),
        tray::TrayIcon::Connected => include_bytes!("../../icons/tray/connected.png"),
        tray::TrayIcon::Error => include_bytes!("../../icons/tray/error.png"),
    };
    tauri::image::Image::from_bytes(bytes).ok()
}

fn tray_menu(c: &Controller) -> tray::TrayMenu {
    let statuses = c.statuses();
    let list: Vec<(String, String)> = c.ids().into_iter().map(|id| (c.name(&id).unwrap_or_default(), id)).collect();
    let idle = portway_client::Status::new(std::iter::empty());
    let visitors: Vec<Vec<tray::VisitorToggle>> = list.iter().map(|(_, id)| c.visitor_toggles(id)).collect();
    let states: Vec<tray::ProfileState<'_>> = list
        .iter()
        .zip(&visitors)
        .map(|((name, id), visitors)| tray::ProfileState {
            id,
            name,
            status: statuses.get(id).unwrap_or(&idle),
            visitors,
        })
        .collect();
    tray::menu(&states, c.lang())
}

fn build_menu(app: &AppHandle, m: &tray::TrayMenu) -> tauri::Result<Menu<tauri::Wry>> {
    use crate::i18n::{text, Msg};
    let menu = Menu::new(app)?;
    for p in &m.profiles {
        let state = MenuItem::with_id(app, format!("p:{}:state", p.id), &p.state_line, false, None::<&str>)?;
        let toggle = MenuItem::with_id(app, format!("p:{}:toggle", p.id), p.toggle_label, true, None::<&str>)?;
        let sub = Submenu::with_id_and_items(app, format!("p:{}", p.id), &p.title, true, &[&state, &toggle])?;
        if !p.visitors.is_empty() {
            sub.append(&PredefinedMenuItem::separator(app)?)?;
        }
        for v in &p.visitors {
            let id = format!("v:{}:{}", p.id, v.name);
            sub.append(&CheckMenuItem::with_id(app, id, &v.label, true, v.checked, None::<&str>)?)?;
        }
        menu.append(&sub)?;
    }
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    let connect_all = text(m.lang, Msg::ConnectAll);
    menu.append(&MenuItem::with_id(app, "connect-all", connect_all, m.can_connect_all, None::<&str>)?)?;
    let disconnect_all = text(m.lang, Msg::DisconnectAll);
    menu.append(&MenuItem::with_id(app, "disconnect-all", disconnect_all, m.can_disconnect_all, None::<&str>)?)?;
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    menu.append(&MenuItem::with_id(app, "open", text(m.lang, Msg::Open), true, None::<&str>)?)?;
    menu.append(&MenuItem::with_id(app, "quit", text(m.lang, Msg::Quit), true, None::<&str>)?)?;
    Ok(menu)
}

fn apply_tray(app: &AppHandle, tray_icon: &TrayIcon, m: &tray::TrayMenu) {
    if let Ok(menu) = build_menu(app, m) {
        let _ = tray_icon.set_menu(Some(menu));
    }
    let _ = tray_icon.set_icon(tray_icon_image(m.icon));
    let _ = tray_icon.set_tooltip(Some(&m.tooltip));
}

/// Shows the main window, creating it again when it was closed to the tray (closing destroys the web view so that
/// WebKit's processes exit; the state lives in the controller and the page reads it back when it loads).
fn show_main(app: &AppHandle) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.unminimize();
        let _ = w.show();
        let _ = w.set_focus();
        return;
    }
    let Some(cfg) = app.config().app.windows.iter().find(|w| w.label == "main").cloned() else {
        return;
    };
    let started = std::time::Instant::now();
    *app.state::<Opened>().0.lock().unwrap_or_else(|e| e.into_inner()) = Some(started);
    prefetch_keychain(app);
    let built = tauri::WebviewWindowBuilder::from_config(app, &cfg).and_then(|b| {
        b.on_page_load(|w, load| {
            let since_open_ms = w.app_handle().state::<Opened>().since();
            tracing::debug!(?since_open_ms, event = ?load.event(), "window: page load");
        })
        .build()
    });
    match built {
        Ok(w) => {
            let _ = w.set_focus();
            tracing::info!(build_ms = started.elapsed().as_millis() as u64, "window opened again");
        }
        Err(e) => tracing::warn!(error = %e, "cannot open the window again"),
    }
}

/// After the window and its web view are gone, hands what they held back to the system (the tray app's footprint,
/// see [`crate::memory`]): ends WebKit's network process (a new one starts with the next web view), returns the
/// allocator's free memory and unmaps the library pages only the window used. Delayed: WebKit finishes its
/// teardown after the window's `Destroyed`. `PORTWAY_TRAY_KEEP=network,pages` skips either step (to measure them).
fn release_after_close(app: &AppHandle) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        // Checked and done on the main thread, where windows are built: no web view opens in between.
        let (tx, rx) = tokio::sync::oneshot::channel();
        let main = app.clone();
        let keep_network = crate::memory::keeps("network");
        let _ = app.run_on_main_thread(move || {
            let closed = main.webview_windows().is_empty();
            let ended = if closed && !keep_network { crate::memory::end_network_process() } else { Vec::new() };
            let _ = tx.send((closed, ended));
        });
        let Ok((true, network_ended)) = rx.await else {
            return; // opened again meanwhile
        };
        let before = crate::memory::resident_kib();
        let released = tauri::async_runtime::spawn_blocking(move || {
            let heap = crate::memory::release_free_memory();
            let pages = if crate::memory::keeps("pages") { Ok((0, 0)) } else { crate::memory::release_library_pages() };
            (heap, pages)
        })
        .await;
        let Ok((heap, pages)) = released else { return };
        let after = crate::memory::resident_kib();
        match pages {
            Ok((mappings, kib)) => tracing::info!(
                ?network_ended, heap, mappings, library_kib = kib, rss_before_kib = ?before, rss_after_kib = ?after,
                "window closed to the tray: memory returned"
            ),
            Err(e) => {
                tracing::warn!(?network_ended, heap, error = %e, rss_before_kib = ?before, rss_after_kib = ?after,
                "window closed to the tray: library pages not released")
            }
        }
    });
}

/// Opens the display (GTK, Linux) before Tauri's event loop does: tao panics with a backtrace when GTK cannot open
/// it. Without one the app says which display it tried and how to fix it, and exits with code 1.
#[cfg(target_os = "linux")]
fn open_display() {
    if gtk::init().is_ok() {
        return;
    }
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    eprintln!(
        "Portway cannot open the display (DISPLAY={:?}, WAYLAND_DISPLAY={:?}): start it from a desktop session, or \
         set DISPLAY (X11) or WAYLAND_DISPLAY to a running display server",
        var("DISPLAY"),
        var("WAYLAND_DISPLAY")
    );
    std::process::exit(1);
}

/// Runs the desktop app.
pub fn run() {
    #[cfg(target_os = "linux")]
    open_display();
    let logs = LogBuffer::default();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(logs.layer())
        .try_init();
    // The engines relay on the runtime the headless binaries use (bulk transfers share a worker fairly); it lives
    // as long as `run`, i.e. until the app exits.
    let _runtime = match portway_proto::relay::runtime() {
        Ok(rt) => {
            tauri::async_runtime::set(rt.handle().clone());
            Some(rt)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot start the tuned async runtime; using tauri's default one");
            None
        }
    };
    let controller = Arc::new(Controller::load(&Controller::default_dir(), logs.clone()));

    let result = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| show_main(app)))
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_opener::init())
        .plugin(tauri_plugin_autostart::init(tauri_plugin_autostart::MacosLauncher::LaunchAgent, None))
        .manage(controller.clone())
        .manage(Prefetch::default())
        .manage(Opened::default())
        .invoke_handler(tauri::generate_handler![
            list_profiles,
            add_profile,
            rename_profile,
            delete_profile,
            get_profile,
            save_profile,
            set_secret,
            set_proxy_password,
            clear_proxy_password,
            set_proxy_secret_key,
            set_visitor_secret_key,
            set_visitor_enabled,
            clear_secret,
            keychain_status,
            page_start,
            connect,
            disconnect,
            connect_all,
            disconnect_all,
            get_status,
            test_sign_in,
            diagnose,
            get_logs,
            import_frpc,
            export_frpc,
            get_language,
            set_language
        ])
        .setup(move |app| {
            let handle = app.handle().clone();
            let model = tray_menu(&controller);
            let menu = build_menu(&handle, &model)?;
            let mut builder = TrayIconBuilder::with_id("portway").menu(&menu).tooltip(&model.tooltip);
            if let Some(img) = tray_icon_image(model.icon) {
                builder = builder.icon(img);
            }
            let ctl = controller.clone();
            let tray_icon = builder
                .on_menu_event(move |app, event| {
                    let id = event.id.as_ref().to_string();
                    let ctl = ctl.clone();
                    match id.as_str() {
                        "open" => show_main(app),
                        "quit" => {
                            let app = app.clone();
                            tauri::async_runtime::spawn(async move {
                                ctl.disconnect_all().await;
                                app.exit(0);
                            });
                        }
                        "connect-all" => {
                            tauri::async_runtime::spawn(async move {
                                for (name, e) in ctl.connect_all().await {
                                    tracing::warn!(profile = %name, error = %e, "connect all: a profile did not start");
                                }
                            });
                        }
                        "disconnect-all" => {
                            tauri::async_runtime::spawn(async move { ctl.disconnect_all().await });
                        }
                        other => {
                            // A visitor's check item: `v:PROFILE:VISITOR` (neither contains ':').
                            if let Some((pid, name)) = other.strip_prefix("v:").and_then(|r| r.split_once(':')) {
                                let (pid, name) = (pid.to_string(), name.to_string());
                                tauri::async_runtime::spawn(async move {
                                    if let Err(e) = ctl.toggle_visitor(&pid, &name).await {
                                        tracing::warn!(profile = %pid, visitor = %name, error = %e, "tray visitor toggle failed");
                                    }
                                });
                            } else if let Some(pid) = other.strip_prefix("p:").and_then(|r| r.strip_suffix(":toggle")) {
                                let pid = pid.to_string();
                                tauri::async_runtime::spawn(async move {
                                    if let Err(e) = ctl.toggle(&pid).await {
                                        tracing::warn!(profile = %pid, error = %e, "tray toggle failed");
                                    }
                                });
                            }
                        }
                    }
                })
                .build(app)?;

            // One task turns status changes into UI events (one per changed profile), tray updates and
            // notifications.
            let mut rx = controller.watch();
            let mut logs_rx = controller.logs.subscribe();
            let h2 = handle.clone();
            let ctl2 = controller.clone();
            tauri::async_runtime::spawn(async move {
                let mut prev: std::collections::BTreeMap<String, StatusDto> = Default::default();
                let mut prev_status = rx.borrow().clone();
                let mut was_connected = std::collections::HashMap::<String, bool>::new();
                let mut shown_menu = None;
                loop {
                    tokio::select! {
                        r = rx.changed() => {
                            if r.is_err() { break; }
                            let all = rx.borrow_and_update().clone();
                            for (id, s) in &all {
                                let dto = ctl2.status_dto(id, s);
                                if prev.get(id) != Some(&dto) {
                                    let _ = h2.emit("status-changed", &dto);
                                    prev.insert(id.clone(), dto);
                                }
                                let was = was_connected.entry(id.clone()).or_default();
                                if let Some(old) = prev_status.get(id) {
                                    let name = ctl2.name(id).unwrap_or_default();
                                    if let Some((title, body)) = tray::notification(old, s, was, &name, ctl2.lang()) {
                                        use tauri_plugin_notification::NotificationExt;
                                        let _ = h2.notification().builder().title(title).body(body).show();
                                    }
                                }
                            }
                            prev.retain(|id, _| all.contains_key(id));
                            prev_status = all;
                            let m = tray_menu(&ctl2);
                            if shown_menu.as_ref() != Some(&m) {
                                apply_tray(&h2, &tray_icon, &m);
                                shown_menu = Some(m);
                            }
                        }
                        l = logs_rx.recv() => match l {
                            Ok(line) => { let _ = h2.emit("log", line); }
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                            Err(_) => break,
                        },
                    }
                }
            });

            let options = controller.app_options();
            if options.start_minimized {
                // Straight to the tray without a web view (see `show_main`).
                if let Some(w) = app.get_webview_window("main") {
                    let _ = w.destroy();
                }
            } else {
                prefetch_keychain(&handle);
            }
            {
                use tauri_plugin_autostart::ManagerExt;
                let al = app.autolaunch();
                let _ = if options.launch_at_login { al.enable() } else { al.disable() };
            }
            for id in controller.connect_on_launch() {
                let ctl = controller.clone();
                tauri::async_runtime::spawn(async move {
                    if let Err(e) = ctl.connect(&id).await {
                        tracing::warn!(profile = %id, error = %e, "connect on launch failed");
                    }
                });
            }
            Ok(())
        })
        .build(tauri::generate_context!());
    match result {
        // Closing the window destroys it with its web view (WebKit's web process exits, the network process is
        // ended: the tray app's footprint) and keeps the app running in the tray; only Quit (an exit with a code)
        // ends it.
        Ok(app) => app.run(|app, event| match event {
            RunEvent::ExitRequested { code: None, api, .. } => api.prevent_exit(),
            RunEvent::WindowEvent { event: tauri::WindowEvent::Destroyed, .. } => release_after_close(app),
            _ => {}
        }),
        Err(e) => {
            eprintln!("Portway could not start: {e}");
            std::process::exit(1);
        }
    }
}
