//! Work that runs beside the partition tasks at a lower CPU priority: the checkpoint's disk write
//! (sled's batch and flush, the `write` stage). It only has to finish before the partition's next
//! checkpoint, while the partition tasks' records wait for the CPU it takes.

/// Runs `f` on a thread of its own named `name`, at a lowered priority
/// ([`lower_thread_priority`]), and waits for its result without holding a runtime thread. A new
/// thread rather than tokio's blocking pool: the pool's threads are reused by other blocking work,
/// and an unprivileged process cannot raise a thread's priority back. `Err` if the thread cannot
/// be started, `Ok(None)` if `f` panicked.
pub async fn run_lowered<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<Option<T>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            lower_thread_priority();
            let _ = tx.send(f());
        })?;
    Ok(rx.await.ok())
}

/// Lowers the calling thread's scheduling priority by 10 nice levels (at most to 19), so that on a
/// busy machine the partition tasks and the Kafka client's threads run first and this thread takes
/// the CPU they leave. Relative, so a service the operator already runs niced goes lower still.
/// Linux keeps the nice value per thread (`nice(2)` changes the calling thread only); the other
/// threads keep theirs. Best effort: a refusal is logged at debug level.
pub fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: errno is thread-local; nice takes an integer and touches no memory of ours.
        // nice returns the new value, which can be -1, so errno tells a failure apart.
        let failed = unsafe {
            *libc::__errno_location() = 0;
            libc::nice(10) == -1 && *libc::__errno_location() != 0
        };
        if failed {
            tracing::debug!(error = %std::io::Error::last_os_error(), "nice refused");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nice value of the calling thread, as the kernel reports it.
    #[cfg(target_os = "linux")]
    fn nice_of_this_thread() -> i32 {
        // SAFETY: plain integers. getpriority can return -1 legitimately; errno is not needed
        // here because the values compared are 0..=19.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
    }

    /// The writer thread runs at nice +10 and the thread that started it keeps its own priority
    /// (Linux keeps nice per thread): a process-wide change would slow the partition tasks too.
    #[cfg(target_os = "linux")]
    #[test]
    fn only_the_calling_thread_is_lowered() {
        let before = nice_of_this_thread();
        let lowered = std::thread::spawn(|| {
            lower_thread_priority();
            nice_of_this_thread()
        })
        .join()
        .unwrap();
        assert_eq!(lowered, (before + 10).min(19));
        assert_eq!(nice_of_this_thread(), before);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn run_lowered_returns_the_result_from_a_lowered_thread() {
        let before = nice_of_this_thread();
        let got = run_lowered("test-lowered", nice_of_this_thread)
            .await
            .unwrap();
        assert_eq!(got, Some((before + 10).min(19)));
        let panicked = run_lowered("test-panics", || panic!("on purpose"))
            .await
            .unwrap();
        assert_eq!(panicked, None::<()>);
    }
}
