//! The process's memory: small pages for the heap.
//!
//! The binary and the benches allocate through mimalloc (see `main.rs`). mimalloc v3 maps its
//! arenas aligned to 2 MiB, so on a kernel whose transparent huge pages are `always` (the default
//! of many distributions, and of the machine BENCHMARKS.md was measured on) every fresh mimalloc
//! page faults in a whole huge page, which the kernel zeroes first. A `perf` profile of the load
//! test put 11-15 % of the process's CPU in that zeroing (`clear_page_erms` under
//! `_mi_page_init`); with huge pages off for the process it fell below 1 %, the pipeline ran
//! 10-40 % faster and its peak RSS fell by a fifth (BENCHMARKS.md, 2026-12-06, seventh session).
//!
//! [`prefer_small_pages`] turns them off for this process only (`prctl(PR_SET_THP_DISABLE)`,
//! which mimalloc itself does with `MIMALLOC_ALLOW_THP=0`): the system setting is left alone.
//! An operator who wants huge pages back sets `MIMALLOC_ALLOW_THP=1`.

/// What [`prefer_small_pages`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HugePages {
    /// Transparent huge pages are now off for this process.
    Disabled,
    /// Left as the system has them: `MIMALLOC_ALLOW_THP` asks for them (any value but `0`).
    KeptByRequest,
    /// Not Linux, or the kernel refused (`errno` is in the log).
    Unsupported,
}

/// Turns transparent huge pages off for this process, unless `MIMALLOC_ALLOW_THP` asks for them.
/// Call it first in `main`: it applies to every mapping from then on (the setting is read at
/// fault time), including those mimalloc reserved before `main`.
pub fn prefer_small_pages() -> HugePages {
    match std::env::var("MIMALLOC_ALLOW_THP") {
        Ok(v) if v.trim() != "0" => return HugePages::KeptByRequest,
        _ => {}
    }
    disable_thp()
}

#[cfg(target_os = "linux")]
fn disable_thp() -> HugePages {
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours.
    let r = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if r == 0 {
        HugePages::Disabled
    } else {
        tracing::debug!(error = %std::io::Error::last_os_error(), "PR_SET_THP_DISABLE refused");
        HugePages::Unsupported
    }
}

#[cfg(not(target_os = "linux"))]
fn disable_thp() -> HugePages {
    HugePages::Unsupported
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The process setting is what the kernel reports back (`PR_GET_THP_DISABLE`), so this
    /// fails if the call silently did nothing.
    #[cfg(target_os = "linux")]
    #[test]
    fn huge_pages_are_off_for_the_process_after_the_call() {
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
            return; // the operator's choice is honoured instead; nothing to check here
        }
        assert_eq!(prefer_small_pages(), HugePages::Disabled);
        // SAFETY: as above.
        let now = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert_eq!(now, 1);
    }
}
