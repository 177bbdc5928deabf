//! The Tauri application: commands (one line each, into the controller), tray, window and notifications.

use std::sync::Arc;

use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Emitter, Manager, RunEvent, State};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::controller::{AppError, Controller, KeychainStatus};
use crate::dto::StatusDto;
use crate::logs::{LogBuffer, LogLine};
use crate::profile::Profile;
use crate::tray;

type Ctl<'a> = State<'a, Arc<Controller>>;

#[tauri::command]
fn get_profile(c: Ctl<'_>) -> Profile {
    c.profile()
}
#[tauri::command]
async fn save_profile(c: Ctl<'_>, profile: Profile) -> Result<Profile, AppError> {
    c.save_profile(profile).await
}
#[tauri::command]
async fn set_secret(c: Ctl<'_>, secret: String) -> Result<(), AppError> {
    c.set_secret(&secret).await
}
#[tauri::command]
async fn set_proxy_password(c: Ctl<'_>, name: String, password: String) -> Result<(), AppError> {
    c.set_proxy_password(&name, &password).await
}
#[tauri::command]
async fn clear_proxy_password(c: Ctl<'_>, name: String) -> Result<(), AppError> {
    c.clear_proxy_password(&name).await
}
#[tauri::command]
fn clear_secret(c: Ctl<'_>) -> Result<(), AppError> {
    c.clear_secret()
}
#[tauri::command]
fn keychain_status(c: Ctl<'_>) -> KeychainStatus {
    c.keychain_status()
}
#[tauri::command]
async fn connect(c: Ctl<'_>) -> Result<(), AppError> {
    c.connect().await
}
#[tauri::command]
async fn disconnect(c: Ctl<'_>) -> Result<(), AppError> {
    c.disconnect().await
}
#[tauri::command]
fn get_status(c: Ctl<'_>) -> StatusDto {
    c.status_dto(&c.status())
}
#[tauri::command]
async fn test_sign_in(
    c: Ctl<'_>,
    profile: Profile,
    secret: Option<String>,
) -> Result<portway_client::oidc::TokenInfo, AppError> {
    c.test_sign_in(profile, secret).await
}
#[tauri::command]
async fn diagnose(
    c: Ctl<'_>,
    profile: Profile,
    secret: Option<String>,
) -> Result<Vec<portway_client::diagnose::Step>, AppError> {
    c.diagnose(profile, secret).await
}
#[tauri::command]
fn get_logs(c: Ctl<'_>) -> Vec<LogLine> {
    c.logs.snapshot()
}
#[tauri::command]
async fn import_frpc(c: Ctl<'_>, text: String) -> Result<crate::controller::Imported, AppError> {
    c.import_frpc(&text).await
}
#[tauri::command]
fn export_frpc(c: Ctl<'_>) -> String {
    c.export_frpc()
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

fn build_menu(app: &AppHandle, m: &tray::TrayModel) -> tauri::Result<Menu<tauri::Wry>> {
    let state = MenuItem::with_id(app, "state", &m.state_line, false, None::<&str>)?;
    let toggle = MenuItem::with_id(app, "toggle", m.toggle_label, true, None::<&str>)?;
    let open = MenuItem::with_id(app, "open", "Open Portway", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let sep = PredefinedMenuItem::separator(app)?;
    Menu::with_items(app, &[&state, &sep, &toggle, &open, &sep, &quit])
}

fn apply_tray(app: &AppHandle, tray_icon: &TrayIcon, m: &tray::TrayModel) {
    if let Ok(menu) = build_menu(app, m) {
        let _ = tray_icon.set_menu(Some(menu));
    }
    let _ = tray_icon.set_icon(tray_icon_image(m.icon));
    let _ = tray_icon.set_tooltip(Some(&m.state_line));
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
    match tauri::WebviewWindowBuilder::from_config(app, &cfg).and_then(|b| b.build()) {
        Ok(w) => {
            let _ = w.set_focus();
        }
        Err(e) => tracing::warn!(error = %e, "cannot open the window again"),
    }
}

/// Runs the desktop app.
pub fn run() {
    let logs = LogBuffer::default();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(logs.layer())
        .try_init();
    let controller = Arc::new(Controller::load(&Controller::default_dir(), logs.clone()));

    let result = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| show_main(app)))
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_autostart::init(tauri_plugin_autostart::MacosLauncher::LaunchAgent, None))
        .manage(controller.clone())
        .invoke_handler(tauri::generate_handler![
            get_profile,
            save_profile,
            set_secret,
            set_proxy_password,
            clear_proxy_password,
            clear_secret,
            keychain_status,
            connect,
            disconnect,
            get_status,
            test_sign_in,
            diagnose,
            get_logs,
            import_frpc,
            export_frpc
        ])
        .setup(move |app| {
            let handle = app.handle().clone();
            let model = tray::model(&controller.status());
            let menu = build_menu(&handle, &model)?;
            let mut builder = TrayIconBuilder::with_id("portway").menu(&menu).tooltip(&model.state_line);
            if let Some(img) = tray_icon_image(model.icon) {
                builder = builder.icon(img);
            }
            let ctl = controller.clone();
            let tray_icon = builder
                .on_menu_event(move |app, event| match event.id.as_ref() {
                    "toggle" => {
                        let ctl = ctl.clone();
                        tauri::async_runtime::spawn(async move {
                            if let Err(e) = ctl.toggle().await {
                                tracing::warn!(error = %e, "tray toggle failed");
                            }
                        });
                    }
                    "open" => show_main(app),
                    "quit" => {
                        let (ctl, app) = (ctl.clone(), app.clone());
                        tauri::async_runtime::spawn(async move {
                            let _ = ctl.disconnect().await;
                            app.exit(0);
                        });
                    }
                    _ => {}
                })
                .build(app)?;

            // One task turns status changes into UI events, tray updates and notifications.
            let mut rx = controller.watch();
            let mut logs_rx = controller.logs.subscribe();
            let h2 = handle.clone();
            let ctl2 = controller.clone();
            tauri::async_runtime::spawn(async move {
                let mut prev = rx.borrow().clone();
                let mut was_connected = false;
                loop {
                    tokio::select! {
                        r = rx.changed() => {
                            if r.is_err() { break; }
                            let s = rx.borrow_and_update().clone();
                            let _ = h2.emit("status-changed", ctl2.status_dto(&s));
                            apply_tray(&h2, &tray_icon, &tray::model(&s));
                            if let Some((title, body)) = tray::notification(&prev, &s, &mut was_connected) {
                                use tauri_plugin_notification::NotificationExt;
                                let _ = h2.notification().builder().title(title).body(body).show();
                            }
                            prev = s;
                        }
                        l = logs_rx.recv() => match l {
                            Ok(line) => { let _ = h2.emit("log", line); }
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                            Err(_) => break,
                        },
                    }
                }
            });

            let profile = controller.profile();
            if profile.options.start_minimized {
                // Straight to the tray without a web view (see `show_main`).
                if let Some(w) = app.get_webview_window("main") {
                    let _ = w.destroy();
                }
            }
            {
                use tauri_plugin_autostart::ManagerExt;
                let al = app.autolaunch();
                let _ = if profile.options.launch_at_login { al.enable() } else { al.disable() };
            }
            if profile.options.connect_on_launch {
                let ctl = controller.clone();
                tauri::async_runtime::spawn(async move {
                    if let Err(e) = ctl.connect().await {
                        tracing::warn!(error = %e, "connect on launch failed");
                    }
                });
            }
            Ok(())
        })
        .build(tauri::generate_context!());
    match result {
        // Closing the window destroys it with its web view (WebKit's web and network processes exit: the tray
        // app's footprint) and keeps the app running in the tray; only Quit (an exit with a code) ends it.
        Ok(app) => app.run(|_, event| {
            if let RunEvent::ExitRequested { code: None, api, .. } = event {
                api.prevent_exit();
            }
        }),
        Err(e) => {
            eprintln!("Portway could not start: {e}");
            std::process::exit(1);
        }
    }
}
