//! Without a keychain the app says so and how to fix it, and never falls back to a file. This test runs in its own
//! process (its own test binary) so it can point D-Bus at a socket where no Secret Service answers.

use portway::controller::Controller;
use portway::logs::LogBuffer;

#[test]
fn missing_keychain_is_reported_with_a_fix_and_nothing_is_written() {
    std::env::set_var("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/portway-no-bus");
    let dir = std::env::temp_dir().join(format!("portway-nokeychain-{}", std::process::id()));
    let ctl = Controller::load(&dir, LogBuffer::default());
    let st = ctl.keychain_status();
    assert!(!st.available);
    // A code the window turns into its sentence with the fix (install and unlock a Secret Service provider), and
    // the keychain's own words as the detail.
    assert_eq!(st.code, Some("unavailable"));
    assert!(!st.detail.expect("the keychain's words").is_empty());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let e = rt.block_on(ctl.set_secret("default", "s3cret")).expect_err("no keychain");
    assert_eq!(e.code, "keychain_unavailable");
    let seed = std::fs::read_to_string("tests/fixtures/seed/frpc.toml").expect("seed");
    let e = rt.block_on(ctl.import_frpc(Some("default"), &seed)).expect_err("import needs the keychain for the secret");
    assert_eq!(e.code, "keychain_unavailable");
    assert!(!ctl.profiles_path().exists(), "nothing imported, nothing written");
    let _ = std::fs::remove_dir_all(dir);
}
