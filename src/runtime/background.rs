//! Work that runs beside the partition tasks at a lower CPU priority: the checkpoint's disk write
//! (sled's batch and flush, the `write` stage). It only has to finish before the partition's next
//! checkpoint, while the partition tasks' records wait for the CPU it takes.

/// Runs `f` on a lowered-priority thread ([`lower_thread_priority`]) and waits for its result
/// without holding a runtime thread. Not tokio's blocking pool: its threads are reused by other
/// blocking work, and an unprivileged process cannot raise a thread's priority back. The threads
/// are kept and reused (an idle one takes the job, else a new one named `name` is started and
/// lowered once), so that concurrent jobs still run in parallel and no thread is started per job:
/// every new thread costs a stack and an allocator heap of its own, and a thread that exits
/// leaves its heap's pages behind for others to reclaim. `Err` if a thread cannot be started,
/// `Ok(None)` if `f` panicked (the thread survives it).
pub async fn run_lowered<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<Option<T>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok();
        Box::new(move || {
            let _ = tx.send(result);
        })
    });
    let idle = idle_workers().pop();
    let worker = match idle {
        Some(w) => w,
        None => start_worker(name)?,
    };
    if let Err(std::sync::mpsc::SendError(job)) = worker.send(job) {
        // The worker is gone (cannot happen while it holds its own sender): run on a new one.
        start_worker(name)?
            .send(job)
            .map_err(|_| std::io::Error::other("lowered worker thread stopped"))?;
    }
    Ok(rx.await.ok().flatten())
}

/// A job returns its reply, which the worker sends once it is idle again (so the caller's next
/// job finds it idle).
type Job = Box<dyn FnOnce() -> Reply + Send>;
type Reply = Box<dyn FnOnce() + Send>;

/// The idle lowered threads, each waiting on its own channel.
fn idle_workers() -> std::sync::MutexGuard<'static, Vec<std::sync::mpsc::Sender<Job>>> {
    static IDLE: std::sync::Mutex<Vec<std::sync::mpsc::Sender<Job>>> =
        std::sync::Mutex::new(Vec::new());
    IDLE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts a lowered thread that runs the jobs sent to it, putting itself back on the idle list
/// after each.
fn start_worker(name: &str) -> std::io::Result<std::sync::mpsc::Sender<Job>> {
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    let own = tx.clone();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            lower_thread_priority();
            for job in rx {
                let reply = job();
                idle_workers().push(own.clone());
                reply();
            }
        })?;
    Ok(tx)
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

    /// Jobs run one after another reuse a thread (no thread per job); jobs running together get
    /// threads of their own; every one of them is lowered.
    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn threads_are_reused_and_concurrent_jobs_run_in_parallel() {
        let before = nice_of_this_thread();
        let tid = || unsafe { libc::gettid() };
        let first = run_lowered("test-reuse", tid).await.unwrap().unwrap();
        let second = run_lowered("test-reuse", tid).await.unwrap().unwrap();
        // Another test of this module may take the idle thread in between; then the next two
        // must agree.
        let third = run_lowered("test-reuse", tid).await.unwrap().unwrap();
        assert!(
            first == second || second == third,
            "a thread is reused: {first} {second} {third}"
        );
        // Two jobs that wait for each other can only finish if they run at the same time.
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let job = |b: std::sync::Arc<std::sync::Barrier>| {
            move || {
                b.wait();
                (unsafe { libc::gettid() }, nice_of_this_thread())
            }
        };
        let (a, b) = tokio::join!(
            run_lowered("test-parallel", job(barrier.clone())),
            run_lowered("test-parallel", job(barrier))
        );
        let (a, b) = (a.unwrap().unwrap(), b.unwrap().unwrap());
        assert_ne!(a.0, b.0);
        assert_eq!(a.1, (before + 10).min(19));
        assert_eq!(b.1, (before + 10).min(19));
    }
}
