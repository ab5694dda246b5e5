//! The few operating-system facts read without a safe wrapper: per-thread and per-process
//! CPU time (`INFO MODULES`, as RedisAI reported it). nix wraps `getrusage` but not
//! `pthread_getcpuclockid`; both are read here with libc so they live in one place.

/// CPU time used by the thread `t`, in seconds.
pub fn thread_cpu_secs(t: libc::pthread_t) -> Option<f64> {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: `t` is a live thread (its JoinHandle is held by the caller); `clock` is a
    // valid out-pointer.
    if unsafe { libc::pthread_getcpuclockid(t, &mut clock) } != 0 {
        return None;
    }
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return None;
    }
    Some(ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9)
}

/// Whose resource usage to read.
#[derive(Clone, Copy)]
pub enum Who {
    /// The whole process.
    Process,
    /// Its terminated children (background saves).
    Children,
    /// The calling thread.
    Thread,
}

/// (system, user) CPU seconds used, as `getrusage` reports them.
pub fn cpu_secs(who: Who) -> (f64, f64) {
    let who = match who {
        Who::Process => libc::RUSAGE_SELF,
        Who::Children => libc::RUSAGE_CHILDREN,
        Who::Thread => libc::RUSAGE_THREAD,
    };
    // SAFETY: all-zero is a valid `rusage`; the pointer is valid for the call.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return (0.0, 0.0);
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(ru.ru_stime), secs(ru.ru_utime))
}
