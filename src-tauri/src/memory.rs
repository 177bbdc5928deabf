//! The process's memory while it sits in the tray: glibc's allocator is told to keep few arenas, and to hand
//! freed pages back to the kernel once the window (with its web view) is gone; then the pages of shared libraries
//! that only the window used are unmapped ([`release_library_pages`]) and WebKit's network process, which
//! outlives the web view, is ended ([`end_network_process`]).
//!
//! Why: glibc gives each thread that allocates concurrently an arena of its own (up to 8 per core) and keeps the
//! freed memory of every arena for reuse. The tunnel engine's tokio workers and GTK/WebKit's threads each grow
//! one; after the web view is destroyed, megabytes of freed chunks stay in them, counted in the app's PSS. On
//! other platforms (and other C libraries) both functions do nothing.

/// At most this many malloc arenas (glibc's `M_ARENA_MAX`). The app's threads mostly wait on IO: two arenas
/// keep allocation contention negligible and the freed memory in few places.
pub const ARENA_MAX: i32 = 2;

/// Limits glibc's malloc arenas to [`ARENA_MAX`], unless the environment already sets a limit
/// (`MALLOC_ARENA_MAX`, or `arena_max` in `GLIBC_TUNABLES`: a person's tuning wins). Call first thing in `main`,
/// before any thread starts (arenas already created stay).
pub fn limit_arenas() {
    let tuned = std::env::var_os("MALLOC_ARENA_MAX").is_some()
        || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("arena_max"));
    if tuned {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets an allocator parameter; M_ARENA_MAX with a positive value is always valid.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, ARENA_MAX) };
    }
}

/// Asks WebKit (Linux) to draw the page without GPU compositing, unless the environment already decides
/// (`WEBKIT_DISABLE_COMPOSITING_MODE` set, to anything) or `PORTWAY_TRAY_KEEP` names `compositing`. Compositing
/// loads the GL driver into the app process (under a software renderer Mesa's LLVM, 30 MiB that stay resident
/// after the window closes, 8 MiB of it relocated data that cannot be given back) and into the web process; the
/// app's page is a form and lists, drawn as fast without it. Call first thing in `main`, before any thread starts
/// (the environment is not thread-safe to change).
pub fn prefer_drawing_without_gl() {
    const VAR: &str = "WEBKIT_DISABLE_COMPOSITING_MODE";
    if cfg!(target_os = "linux") && !keeps("compositing") && std::env::var_os(VAR).is_none() {
        std::env::set_var(VAR, "1");
    }
}

/// Whether `PORTWAY_TRAY_KEEP` (a comma-separated list: `compositing`, `network`, `pages`) turns off one of the
/// footprint steps, to measure it (scripts/footprint.sh) or to rule it out when something looks wrong.
pub fn keeps(step: &str) -> bool {
    std::env::var("PORTWAY_TRAY_KEEP").is_ok_and(|k| k.split(',').any(|s| s.trim() == step))
}

/// The process's resident memory in KiB (`VmRSS` of Linux's `/proc/self/status`), for logs; `None` elsewhere.
pub fn resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    line.trim().trim_end_matches("kB").trim().parse().ok()
}

/// Returns the allocator's free memory to the kernel (every arena's, including the main heap's top), as glibc's
/// `malloc_trim(0)`. Costs a walk over the free lists: call it after a large release (the web view destroyed),
/// not on a hot path. Returns whether any memory was released.
pub fn release_free_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes no pointers and is thread-safe (it locks each arena it trims).
        unsafe { libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// A mapping of `/proc/self/smaps` whose resident pages can be dropped without losing anything (see
/// [`library_pages_to_drop`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub start: usize,
    pub end: usize,
    /// Resident pages of the mapping when read, KiB.
    pub rss_kib: u64,
    pub path: String,
}

/// The mappings of a `/proc/PID/smaps` text whose resident pages are exact copies of their file: the read-only
/// private mappings of shared libraries (`.so` files) and of `exe` (the binary), holding no private copy of a page
/// (`Anonymous: 0 kB`: relocated data such as RELRO segments is read-only but holds private copies, and is never
/// chosen), neither locked nor device memory. Dropping their pages (`MADV_DONTNEED`) only unmaps them: they stay
/// in the page cache and the next access maps them again from there. Data files (fonts, icon caches, the locale
/// archive) are left alone: the toolkit may unmap and replace those at any time, libraries only at `dlclose`.
pub fn library_pages_to_drop(smaps: &str, exe: &str) -> Vec<Mapping> {
    struct Entry {
        mapping: Mapping,
        eligible: bool,
        anonymous_kib: Option<u64>,
        flags_ok: bool,
    }
    fn keep(e: Entry, out: &mut Vec<Mapping>) {
        if e.eligible && e.flags_ok && e.anonymous_kib == Some(0) && e.mapping.rss_kib > 0 {
            out.push(e.mapping);
        }
    }
    let kib = |rest: &str| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok();
    let mut out = Vec::new();
    let mut current: Option<Entry> = None;
    for line in smaps.lines() {
        if let Some(rest) = line.strip_prefix("Rss:") {
            if let (Some(e), Some(k)) = (current.as_mut(), kib(rest)) {
                e.mapping.rss_kib = k;
            }
        } else if let Some(rest) = line.strip_prefix("Anonymous:") {
            if let Some(e) = current.as_mut() {
                e.anonymous_kib = kib(rest);
            }
        } else if let Some(rest) = line.strip_prefix("VmFlags:") {
            if let Some(e) = current.as_mut() {
                // Locked (mlock), device memory (io, pfn mapping): not pages of a file to drop.
                e.flags_ok = !rest.split_whitespace().any(|f| matches!(f, "lo" | "io" | "pf"));
            }
        } else if let Some(header) = parse_header(line) {
            if let Some(e) = current.take() {
                keep(e, &mut out);
            }
            let (start, end, perms, path) = header;
            let library = path.ends_with(".so") || path.contains(".so.") || (!exe.is_empty() && path == exe);
            let eligible = perms.starts_with('r')
                && perms.as_bytes().get(1) == Some(&b'-')
                && perms.as_bytes().get(3) == Some(&b'p')
                && path.starts_with('/')
                && !path.starts_with("/dev/")
                && !path.ends_with(" (deleted)")
                && library;
            current = Some(Entry {
                mapping: Mapping { start, end, rss_kib: 0, path: path.to_string() },
                eligible,
                anonymous_kib: None,
                flags_ok: true,
            });
        }
    }
    if let Some(e) = current {
        keep(e, &mut out);
    }
    out
}

/// A smaps header line, `START-END PERMS OFFSET DEV INODE [PATH]`: (start, end, perms, path).
fn parse_header(line: &str) -> Option<(usize, usize, &str, &str)> {
    let mut fields = line.splitn(6, ' ');
    let (start, end) = fields.next()?.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let perms = fields.next()?;
    if perms.len() != 4 || end <= start {
        return None;
    }
    let _offset = fields.next()?;
    let dev = fields.next()?;
    if !dev.contains(':') {
        return None;
    }
    let _inode = fields.next()?;
    Some((start, end, perms, fields.next().unwrap_or("").trim()))
}

/// Unmaps the resident pages of this process's shared libraries and binary that are exact copies of their files
/// ([`library_pages_to_drop`]): after the window is gone most of WebKit's, GTK's and Mesa's code is no longer run,
/// yet its pages stay mapped (and counted in the process's PSS) until used again. The pages stay in the page
/// cache: what the tray still runs, and the window when it opens again, maps them back from memory (minor faults).
/// Returns how many mappings and KiB were dropped. Linux with glibc only (elsewhere: `Ok((0, 0))`).
///
/// Race-free against `dlclose`: smaps is read and the pages dropped inside `dl_iterate_phdr`, which holds the
/// dynamic loader's lock, and only within the segments of objects loaded at that moment (an object leaves the
/// loader's list before its mappings are unmapped), so a range unmapped and reused meanwhile is never touched.
pub fn release_library_pages() -> std::io::Result<(usize, u64)> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        struct Walk {
            chosen: Option<std::io::Result<Vec<(Mapping, bool)>>>,
            count: usize,
            kib: u64,
        }
        unsafe extern "C" fn each(info: *mut libc::dl_phdr_info, _size: usize, data: *mut libc::c_void) -> libc::c_int {
            // SAFETY: `data` is the `Walk` passed to dl_iterate_phdr below, used by this thread only.
            let walk = unsafe { &mut *(data as *mut Walk) };
            let chosen = walk.chosen.get_or_insert_with(|| {
                let smaps = std::fs::read_to_string("/proc/self/smaps")?;
                let exe = std::fs::read_link("/proc/self/exe");
                let exe = exe.map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
                Ok(library_pages_to_drop(&smaps, &exe).into_iter().map(|m| (m, false)).collect())
            });
            let Ok(chosen) = chosen else {
                return 1; // stop: smaps unreadable
            };
            // SAFETY: glibc passes a valid dl_phdr_info whose dlpi_phdr points at dlpi_phnum program headers.
            let (base, headers) = unsafe {
                let info = &*info;
                let n = usize::from(info.dlpi_phnum);
                (info.dlpi_addr as usize, std::slice::from_raw_parts(info.dlpi_phdr, n))
            };
            for h in headers.iter().filter(|h| h.p_type == libc::PT_LOAD) {
                let segment = (base + h.p_vaddr as usize, base + (h.p_vaddr + h.p_memsz) as usize);
                for (m, done) in chosen.iter_mut() {
                    let Some((start, end)) = overlap(segment, (m.start, m.end), page_size()) else { continue };
                    // SAFETY: [start, end) lies in a read-only private file mapping holding no private page
                    // (`library_pages_to_drop`), of an object the loader keeps mapped while it holds its lock
                    // (we are inside dl_iterate_phdr). MADV_DONTNEED only unmaps pages that the next access maps
                    // again, identical, from the file.
                    let r = unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
                    if r == 0 && !*done {
                        *done = true;
                        walk.count += 1;
                        walk.kib += m.rss_kib;
                    }
                }
            }
            0
        }
        let mut walk = Walk { chosen: None, count: 0, kib: 0 };
        // SAFETY: `each` matches dl_iterate_phdr's callback type and only uses `walk` for the duration of the call.
        unsafe { libc::dl_iterate_phdr(Some(each), &mut walk as *mut Walk as *mut libc::c_void) };
        match walk.chosen {
            Some(Err(e)) => Err(e),
            _ => Ok((walk.count, walk.kib)),
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        Ok((0, 0))
    }
}

/// The page-aligned part of `segment` (widened to whole pages) inside `mapping` (page-aligned), if any.
pub fn overlap(segment: (usize, usize), mapping: (usize, usize), page: usize) -> Option<(usize, usize)> {
    let start = (segment.0 & !(page - 1)).max(mapping.0);
    let end = segment.1.div_ceil(page).saturating_mul(page).min(mapping.1);
    (start < end).then_some((start, end))
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn page_size() -> usize {
    // SAFETY: sysconf only reads a system value.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).ok().filter(|&n| n.is_power_of_two()).unwrap_or(4096)
}

/// `pid`, parent pid and command name (`comm`, at most 15 bytes) of a `/proc/PID/stat` line. The name may
/// contain spaces and parentheses: it ends at the last `)`.
pub fn parse_stat(stat: &str) -> Option<(u32, u32, &str)> {
    let (head, tail) = stat.rsplit_once(')')?;
    let (pid, comm) = head.split_once(" (")?;
    let ppid = tail.split_whitespace().nth(1)?.parse().ok()?;
    Some((pid.trim().parse().ok()?, ppid, comm))
}

/// The descendants of `root` (children, their children...) among `(pid, ppid, comm)` rows, whose name starts
/// with `prefix`.
pub fn descendants_named(rows: &[(u32, u32, String)], root: u32, prefix: &str) -> Vec<u32> {
    let mut found = Vec::new();
    let mut parents = vec![root];
    let mut seen = std::collections::HashSet::from([root]);
    while let Some(parent) = parents.pop() {
        for (pid, ppid, comm) in rows {
            if *ppid == parent && seen.insert(*pid) {
                parents.push(*pid);
                if comm.starts_with(prefix) {
                    found.push(*pid);
                }
            }
        }
    }
    found
}

/// WebKit's network process: `WebKitNetworkProcess`, as `comm` shows it (cut at 15 bytes).
pub const NETWORK_PROCESS: &str = "WebKitNetworkPr";

/// Ends WebKit's network processes among this process's descendants (SIGTERM), once no web view is left: WebKit
/// keeps the process for the web context's lifetime, which Tauri keeps for the app's (tauri issue 14626), and
/// starts a new one when a web view needs it again. Nothing the page keeps is lost: the network process holds the
/// page's localStorage (the theme choice) in SQLite and commits each write within 0.5 s, and the app ends it 2 s
/// after the window is gone. Returns the pids signalled. Linux only.
pub fn end_network_process() -> Vec<u32> {
    #[cfg(target_os = "linux")]
    {
        let rows: Vec<(u32, u32, String)> = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|d| d.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())))
            .filter_map(|d| std::fs::read_to_string(d.path().join("stat")).ok())
            .filter_map(|s| parse_stat(&s).map(|(p, pp, c)| (p, pp, c.to_string())))
            .collect();
        let pids = descendants_named(&rows, std::process::id(), NETWORK_PROCESS);
        pids.into_iter()
            .filter(|&pid| {
                // SAFETY: kill sends a signal; the pid is our own descendant, found just above.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) == 0 }
            })
            .collect()
    }
    #[cfg(not(target_os = "linux"))]
    {
        Vec::new()
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    /// Memory freed below a block still in use cannot go back by itself (glibc only shrinks the heap's top):
    /// trimming returns it, and the allocator keeps working afterwards.
    #[test]
    fn memory_freed_inside_the_heap_is_returned() {
        let mut blocks: Vec<Box<[u8]>> = (0..256).map(|i| vec![i as u8; 32 * 1024].into_boxed_slice()).collect();
        let last = blocks.pop();
        std::hint::black_box(&blocks);
        drop(blocks);
        assert!(release_free_memory(), "8 MiB freed below a live block: there are pages to return");
        let again = vec![7u8; 1 << 20];
        assert_eq!(std::hint::black_box(again).iter().map(|&b| b as usize).sum::<usize>(), 7 << 20);
        drop(last);
    }

    #[test]
    fn the_resident_size_is_read() {
        let kib = resident_kib().expect("VmRSS in /proc/self/status");
        assert!(kib > 100 && kib < 64 << 20, "{kib} KiB");
    }

    const SMAPS: &str = "\
55d0c0000000-55d0c1000000 r-xp 00200000 fd:01 1234                       /opt/portway/portway
Rss:                2048 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me sd
55d0c1000000-55d0c1100000 r--p 01200000 fd:01 1234                       /opt/portway/portway
Rss:                 512 kB
Anonymous:           512 kB
VmFlags: rd mr mw me ac sd
55d0c1100000-55d0c1200000 rw-p 01300000 fd:01 1234                       /opt/portway/portway
Rss:                  64 kB
Anonymous:            64 kB
VmFlags: rd wr mr mw me ac sd
7f0000000000-7f0001000000 r-xp 00000000 fd:01 77                         /usr/lib/x86_64-linux-gnu/libLLVM-15.so.1
Rss:                9000 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me sd
7f0001000000-7f0001800000 r--p 01000000 fd:01 77                         /usr/lib/x86_64-linux-gnu/libLLVM-15.so.1
Rss:                8192 kB
Anonymous:          8192 kB
VmFlags: rd mr mw me ac sd
7f0002000000-7f0002100000 r--p 00000000 fd:01 78                         /usr/lib/x86_64-linux-gnu/libgtk-3.so.0.2406.32
Rss:                 300 kB
Anonymous:             0 kB
VmFlags: rd mr mw me sd
7f0002100000-7f0002200000 r-xp 00000000 fd:01 79                         /usr/lib/x86_64-linux-gnu/dri/swrast_dri.so
Rss:                   0 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me sd
7f0003000000-7f0003100000 r--p 00000000 fd:01 80                         /usr/lib/locale/locale-archive
Rss:                 100 kB
Anonymous:             0 kB
VmFlags: rd mr mw me sd
7f0004000000-7f0004100000 r-xp 00000000 fd:01 81                         /tmp/libgone.so (deleted)
Rss:                 100 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me sd
7f0005000000-7f0005100000 r--s 00000000 fd:01 82                         /usr/lib/x86_64-linux-gnu/libshared.so
Rss:                 100 kB
Anonymous:             0 kB
VmFlags: rd sh mr mw me ms sd
7f0006000000-7f0006100000 r-xp 00000000 fd:01 83                         /usr/lib/x86_64-linux-gnu/libpinned.so.1
Rss:                 100 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me lo sd
7f0007000000-7f0007100000 rw-s 00000000 00:06 500                        /dev/dri/renderD128
Rss:                 100 kB
Anonymous:             0 kB
VmFlags: rd wr sh mr mw me ms io pf sd
7f0008000000-7f0008100000 rw-p 00000000 00:00 0 
Rss:                1024 kB
Anonymous:          1024 kB
VmFlags: rd wr mr mw me ac sd
7fff00000000-7fff00001000 r-xp 00000000 00:00 0                          [vdso]
Rss:                   4 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me de sd
7f0009000000-7f0009100000 r-xp 00000000 fd:01 84                         /usr/lib/x86_64-linux-gnu/libold.so.2
Rss:                  40 kB
";

    /// Only read-only private library and binary mappings without private copies of pages, with pages resident.
    #[test]
    fn only_unmodified_read_only_library_pages_are_chosen() {
        let chosen = library_pages_to_drop(SMAPS, "/opt/portway/portway");
        let names: Vec<(&str, u64)> = chosen.iter().map(|m| (m.path.as_str(), m.rss_kib)).collect();
        assert_eq!(
            names,
            [
                ("/opt/portway/portway", 2048),
                ("/usr/lib/x86_64-linux-gnu/libLLVM-15.so.1", 9000),
                ("/usr/lib/x86_64-linux-gnu/libgtk-3.so.0.2406.32", 300),
            ],
            "RELRO with private copies, writable, shared, locked, device, deleted, data files, unresolved \
             Anonymous and empty mappings are left alone"
        );
        assert_eq!((chosen[0].start, chosen[0].end), (0x55d0c0000000, 0x55d0c1000000));
        // Without the binary's path its mappings are not chosen (it is not a .so).
        assert_eq!(library_pages_to_drop(SMAPS, "").len(), 2);
        assert!(library_pages_to_drop("garbage\n\n0-0 r-xp\n", "").is_empty());
    }

    /// A real library loaded for the test and never run (the first of a few common ones this process has not
    /// loaded): the release drops the resident pages of its code, and reading it again gives the same bytes back
    /// (mapped again from the page cache).
    #[test]
    fn dropped_library_pages_come_back_from_the_file() {
        let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
        // Libraries of Debian's required packages; the first ones are not linked by the GTK/WebKit stack.
        let candidates = ["libpam.so.0", "libacl.so.1", "libtinfo.so.6", "libcrypt.so.1", "libattr.so.1", "libz.so.1"];
        let name = candidates.into_iter().find(|n| !maps.contains(&format!("/{n}"))).expect("an unloaded library");
        let cname = std::ffi::CString::new(name).expect("no NUL");
        // SAFETY: loads a system library (its constructors are the distribution's); the handle is kept loaded.
        let handle = unsafe { libc::dlopen(cname.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL) };
        assert!(!handle.is_null(), "dlopen {name}");
        // Its code: the executable mapping, read whole below (resident), never run.
        let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
        let (start, end) = maps
            .lines()
            .filter_map(parse_header)
            .filter(|&(_, _, perms, path)| perms == "r-xp" && path.contains(&format!("/{name}")))
            .map(|(start, end, _, _)| (start, end))
            .max_by_key(|&(start, end)| end - start)
            .expect("the library's code mapping");
        // SAFETY: a readable mapping of a library that stays loaded.
        let view = unsafe { std::slice::from_raw_parts(start as *const u8, end - start) };
        let hash =
            |v: &[u8]| v.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
        let expected = hash(view);
        let rss = || {
            let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
            library_pages_to_drop(&smaps, "").into_iter().find(|m| m.start == start).map_or(0, |m| m.rss_kib)
        };
        let before = rss();
        assert!(before * 1024 >= (end - start) as u64 / 2, "{before} KiB resident after reading it");
        let (count, kib) = release_library_pages().expect("smaps readable");
        assert!(count >= 1 && kib >= before, "{count} mappings, {kib} KiB dropped");
        assert_eq!(rss(), 0, "no page of {name}'s code resident after the release");
        assert_eq!(hash(view), expected, "the same bytes after mapping them again");
    }

    #[test]
    fn segments_are_cut_to_whole_pages_inside_the_mapping() {
        let page = 4096;
        assert_eq!(overlap((0x1010, 0x3010), (0x1000, 0x5000), page), Some((0x1000, 0x4000)));
        assert_eq!(overlap((0x1010, 0x9000), (0x2000, 0x5000), page), Some((0x2000, 0x5000)));
        assert_eq!(overlap((0x1010, 0x1fff), (0x2000, 0x5000), page), None);
        assert_eq!(overlap((0x6000, 0x7000), (0x2000, 0x5000), page), None);
    }

    #[test]
    fn stat_lines_are_parsed_with_odd_names() {
        assert_eq!(parse_stat("123 (WebKitNetworkPr) S 77 123 123 0"), Some((123, 77, "WebKitNetworkPr")));
        assert_eq!(parse_stat("9 (a) b (c)) R 1 9 9"), Some((9, 1, "a) b (c)")));
        assert_eq!(parse_stat("no parentheses here"), None);
    }

    #[test]
    fn only_descendants_with_the_name_are_found() {
        let rows = |v: &[(u32, u32, &str)]| v.iter().map(|&(p, pp, c)| (p, pp, c.to_string())).collect::<Vec<_>>();
        let rows = rows(&[
            (10, 1, "portway"),
            (11, 10, NETWORK_PROCESS),
            (12, 10, "WebKitWebProces"),
            (13, 12, "sh"),
            (14, 13, NETWORK_PROCESS),
            (20, 1, NETWORK_PROCESS), // another app's
        ]);
        let mut found = descendants_named(&rows, 10, NETWORK_PROCESS);
        found.sort();
        assert_eq!(found, [11, 14]);
        assert!(descendants_named(&rows, 99, NETWORK_PROCESS).is_empty());
    }

    /// Real child processes: the one named as WebKit's network process is ended, its sibling is not.
    #[test]
    fn the_network_process_child_is_ended_and_others_are_not() {
        let dir = std::env::temp_dir().join(format!("portway-netproc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let sleep = ["/bin/sleep", "/usr/bin/sleep"].into_iter().find(|p| std::path::Path::new(p).exists());
        let sleep = sleep.expect("sleep(1) installed");
        let named = dir.join("WebKitNetworkProcess");
        std::fs::copy(sleep, &named).expect("copy sleep");
        let mut network = std::process::Command::new(&named).arg("30").spawn().expect("start the named child");
        let mut other = std::process::Command::new(sleep).arg("30").spawn().expect("start the other child");
        // The name is set at exec: wait until /proc shows it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let comm = |pid: u32| std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        while !comm(network.id()).starts_with(NETWORK_PROCESS) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let ended = end_network_process();
        assert!(ended.contains(&network.id()), "{ended:?} does not hold {}", network.id());
        assert!(!ended.contains(&other.id()));
        let status = network.wait().expect("wait for the named child");
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(status.signal(), Some(libc::SIGTERM));
        assert!(other.try_wait().expect("try_wait").is_none(), "the other child still runs");
        let _ = other.kill();
        let _ = other.wait();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
