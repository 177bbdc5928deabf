fn main() {
    // Only the desktop build embeds the Tauri context (config, frontend, icons).
    if std::env::var_os("CARGO_FEATURE_DESKTOP").is_some() {
        tauri_build::build();
    }
}
