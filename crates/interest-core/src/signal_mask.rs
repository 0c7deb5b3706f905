//! Threads a host process must not receive signals on. Postgres delivers
//! cancel and terminate as signals to the backend; a thread the library
//! starts (ONNX Runtime's pools, the vector index's build threads) must
//! never take one, or the backend would miss it.

/// Runs `f` with every signal blocked on this thread, so that threads started
/// inside it inherit a full mask and never take a signal meant for the host
/// process's main thread. The mask is restored afterwards, also when `f`
/// panics (the host's thread must not go on with its signals blocked).
pub fn with_signals_blocked<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(libc::sigset_t);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: restores the mask saved below.
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
        }
    }
    // SAFETY: plain libc calls on local, initialised sigset_t values.
    let _restore = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
        Restore(old)
    };
    f()
}
