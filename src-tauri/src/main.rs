// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    // Before any thread starts: arenas are created per thread.
    portway::memory::limit_arenas();
    portway::memory::prefer_drawing_without_gl();
    portway::run();
}
