//! The process's memory while it sits in the tray: glibc's allocator is told to keep few arenas, and to hand
//! freed pages back to the kernel once the window (with its web view) is gone.
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
}
