//! frp's `log.to` (a file path instead of `"console"`) and `log.maxDays`, as frps/frpc keep their log file:
//! lines are appended to the file (created with its directories, mode 0600, when missing); at the first line
//! after local midnight the file is renamed to `NAME.YYYYMMDD-HHMMSS.EXT` (the time of the rename, frp's backup
//! name) and a new one started; then backups older than `maxDays` days are deleted (`maxDays` <= 0 keeps them
//! all). Like frp, nothing is rotated at start: an existing file is appended to.
//!
//! The writer is a `tracing_subscriber` `MakeWriter`: each event takes the lock, checks the date and writes its
//! line (small, buffered by the kernel's page cache, as a write to stderr).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// The log file of `log.to`, shared by every thread that logs.
#[derive(Clone)]
pub struct LogFile {
    state: Arc<Mutex<State>>,
}

struct State {
    path: PathBuf,
    max_days: i64,
    file: Option<File>,
    /// The local date (year, month, day) the current file belongs to.
    day: (i32, i32, i32),
}

/// Why the log file cannot be used, naming it and the key.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot write the log file {path} (log.to): {source}; fix the path or its permissions, or set log.to = \"console\""
)]
pub struct LogFileError {
    path: String,
    #[source]
    source: std::io::Error,
}

impl LogFile {
    /// Opens (appends to) `path`, creating it and its directories; fails now rather than losing lines later.
    pub fn open(path: &str, max_days: i64) -> Result<LogFile, LogFileError> {
        let mut state = State { path: PathBuf::from(path), max_days, file: None, day: local(now()).date() };
        state.open_existing_or_new().map_err(|source| LogFileError { path: path.to_string(), source })?;
        Ok(LogFile { state: Arc::new(Mutex::new(state)) })
    }

    /// Writes `buf` as if the clock said `at` (seconds since the epoch): the rotation's logic, for tests.
    pub fn write_at(&self, buf: &[u8], at: i64) -> std::io::Result<usize> {
        self.lock().write_at(buf, at)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock left at worst a half-written line: keep logging.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    fn open_existing_or_new(&mut self) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut opts = OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        self.file = Some(opts.open(&self.path)?);
        Ok(())
    }

    fn write_at(&mut self, buf: &[u8], at: i64) -> std::io::Result<usize> {
        let today = local(at).date();
        if today != self.day {
            self.day = today;
            // A failed rotation keeps writing to the file it has: no line is lost for a rename that failed.
            let _ = self.rotate(at);
        }
        if self.file.is_none() {
            self.open_existing_or_new()?;
        }
        match self.file.as_mut() {
            Some(f) => f.write(buf),
            None => Ok(buf.len()),
        }
    }

    fn rotate(&mut self, at: i64) -> std::io::Result<()> {
        self.file = None;
        std::fs::rename(&self.path, backup_name(&self.path, local(at)))?;
        self.open_existing_or_new()?;
        if self.max_days > 0 {
            self.clear_backups(at - self.max_days * 86_400);
        }
        Ok(())
    }

    /// Deletes backups named before `cutoff` (seconds since the epoch, local time in the name).
    fn clear_backups(&self, cutoff: i64) {
        let (dir, prefix, ext) = parts(&self.path);
        let Ok(entries) = std::fs::read_dir(if dir.as_os_str().is_empty() { Path::new(".") } else { dir }) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let stamp = name.strip_prefix(&format!("{prefix}.")).and_then(|r| r.strip_suffix(ext.as_str()));
            if let Some(t) = stamp.and_then(parse_stamp) {
                // frp deletes a backup as old as the cutoff too.
                if t <= cutoff {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
}

/// `tracing_subscriber`'s writer: one lock per event.
pub struct Line<'a>(MutexGuard<'a, State>);

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_at(buf, now())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.0.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogFile {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line(self.lock())
    }
}

/// Installs the process's `tracing` subscriber as frps/frpc's `log.*` asks: `to` = `"console"` (or empty): standard
/// output, as frps and frpc write their console log (so `frps -c frps.toml > frps.log` keeps working), coloured on
/// a terminal unless `disable_color`; otherwise the file `to` ([`LogFile`], never coloured). Errors that stop a
/// start stay on standard error.
pub fn init(
    filter: tracing_subscriber::EnvFilter,
    to: &str,
    max_days: i64,
    disable_color: bool,
) -> Result<(), LogFileError> {
    let b = tracing_subscriber::fmt().with_env_filter(filter);
    if to.is_empty() || to == "console" {
        let ansi = !disable_color && std::io::IsTerminal::is_terminal(&std::io::stdout());
        b.with_writer(std::io::stdout).with_ansi(ansi).init();
    } else {
        b.with_writer(LogFile::open(to, max_days)?).with_ansi(false).init();
    }
    Ok(())
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Local civil time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: i32,
    month: i32,
    day: i32,
    hour: i32,
    minute: i32,
    second: i32,
}

impl Civil {
    fn date(self) -> (i32, i32, i32) {
        (self.year, self.month, self.day)
    }
}

/// `t` in the local time zone (the system's, as frp's Go runtime uses).
fn local(t: i64) -> Civil {
    use chrono::{Datelike, TimeZone, Timelike};
    match chrono::Local.timestamp_opt(t, 0).earliest() {
        Some(d) => Civil {
            year: d.year(),
            month: d.month() as i32,
            day: d.day() as i32,
            hour: d.hour() as i32,
            minute: d.minute() as i32,
            second: d.second() as i32,
        },
        None => Civil { year: 1970, month: 1, day: 1, hour: 0, minute: 0, second: 0 },
    }
}

/// Seconds since the epoch of a local civil time (`None`: no such time, e.g. inside a DST gap).
fn from_local(c: Civil) -> Option<i64> {
    use chrono::TimeZone;
    let u = |v: i32| u32::try_from(v).ok();
    chrono::Local
        .with_ymd_and_hms(c.year, u(c.month)?, u(c.day)?, u(c.hour)?, u(c.minute)?, u(c.second)?)
        .earliest()
        .map(|d| d.timestamp())
}

/// (directory, file name without its extension, extension with its dot).
fn parts(path: &Path) -> (&Path, String, String) {
    let dir = path.parent().unwrap_or(Path::new(""));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    match name.rfind('.').filter(|&i| i > 0) {
        Some(i) => (dir, name[..i].to_string(), name[i..].to_string()),
        None => (dir, name, String::new()),
    }
}

/// frp's backup name: `frps.log` → `frps.20261130-000000.log`.
fn backup_name(path: &Path, c: Civil) -> PathBuf {
    let (dir, prefix, ext) = parts(path);
    let stamp = format!("{:04}{:02}{:02}-{:02}{:02}{:02}", c.year, c.month, c.day, c.hour, c.minute, c.second);
    dir.join(format!("{prefix}.{stamp}{ext}"))
}

/// `YYYYMMDD-HHMMSS` → seconds since the epoch (local time); `None` for anything else.
fn parse_stamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 15 || b[8] != b'-' || !s[..8].bytes().chain(s[9..].bytes()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s[r].parse::<i32>().ok();
    from_local(Civil {
        year: n(0..4)?,
        month: n(4..6)?,
        day: n(6..8)?,
        hour: n(9..11)?,
        minute: n(11..13)?,
        second: n(13..15)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("portway-logfile-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn names(d: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(d).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn backup_names_are_frps() {
        let c = Civil { year: 2026, month: 11, day: 30, hour: 0, minute: 0, second: 7 };
        assert_eq!(backup_name(Path::new("/var/log/frps.log"), c), PathBuf::from("/var/log/frps.20261130-000007.log"));
        assert_eq!(backup_name(Path::new("frpc"), c), PathBuf::from("frpc.20261130-000007"));
        assert_eq!(parse_stamp("20261130-000007").map(local), Some(c));
        for bad in ["2026113-000007", "20261130_000007", "2026113x-000007", ""] {
            assert_eq!(parse_stamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn lines_are_appended_then_rotated_at_a_new_day_and_old_backups_go() {
        let d = dir("rotate");
        let path = d.join("logs").join("frps.log");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "from before\n").unwrap();
        let f = LogFile::open(path.to_str().unwrap(), 2).unwrap();
        let noon = from_local(Civil { year: 2031, month: 3, day: 10, hour: 12, minute: 0, second: 0 }).unwrap();
        let day = |n: i64| noon + n * 86_400;
        // Today (the day it was opened) is not known to the test: pin it to day 0 by writing once there first.
        f.lock().day = local(day(0)).date();
        f.write_at(b"day 0\n", day(0)).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "from before\nday 0\n", "appended, not rotated at start");
        f.write_at(b"day 1\n", day(1)).unwrap();
        f.write_at(b"day 1 again\n", day(1) + 60).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "day 1\nday 1 again\n");
        let logs = path.parent().unwrap();
        assert_eq!(names(logs), vec!["frps.20310311-120000.log".to_string(), "frps.log".into()]);
        assert_eq!(std::fs::read_to_string(logs.join("frps.20310311-120000.log")).unwrap(), "from before\nday 0\n");
        for n in 2..=4 {
            f.write_at(format!("day {n}\n").as_bytes(), day(n)).unwrap();
        }
        // maxDays = 2: at day 4 the backups named day 1 and day 2 are older than two days; day 3's and day 4's stay.
        assert_eq!(
            names(logs),
            vec!["frps.20310313-120000.log".to_string(), "frps.20310314-120000.log".into(), "frps.log".into()]
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "day 4\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn an_unwritable_path_is_named_at_open() {
        let d = dir("bad");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("file"), "").unwrap();
        // A directory where a file is: cannot be created.
        let e = LogFile::open(d.join("file").join("frps.log").to_str().unwrap(), 3).err().unwrap().to_string();
        assert!(e.contains("frps.log") && e.contains("log.to"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
