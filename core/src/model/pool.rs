//! Dedicated inference threads. Jobs (a model's next batch, a session to create) queue
//! here and run on these threads, never on the async runtime's workers.

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

type Job = Box<dyn FnOnce() + Send>;

struct Shared {
    queue: Mutex<(VecDeque<Job>, bool)>,
    ready: Condvar,
}

/// A fixed set of worker threads taking jobs from one queue.
pub struct InferencePool {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    size: usize,
}

impl InferencePool {
    /// Start `size` (at least 1) worker threads.
    ///
    /// # Errors
    /// When a thread cannot be spawned.
    pub fn new(size: usize) -> std::io::Result<InferencePool> {
        let shared = Arc::new(Shared {
            queue: Mutex::new((VecDeque::new(), false)),
            ready: Condvar::new(),
        });
        let mut threads = Vec::new();
        for i in 0..size.max(1) {
            let s = shared.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("insitu-infer-{i}"))
                    .spawn(move || worker(&s))?,
            );
        }
        Ok(InferencePool {
            shared,
            threads: Mutex::new(threads),
            size: size.max(1),
        })
    }

    /// The number of worker threads.
    pub fn size(&self) -> usize {
        self.size
    }

    /// CPU time each worker thread has used, in seconds (`None` where the clock cannot be
    /// read), for `INFO MODULES`' `ai_queue_CPU_bthread_n<i>_used_cpu_total`.
    pub fn thread_cpu_secs(&self) -> Vec<Option<f64>> {
        use std::os::unix::thread::JoinHandleExt;
        self.threads
            .lock()
            .iter()
            .map(|t| crate::sys::thread_cpu_secs(t.as_pthread_t()))
            .collect()
    }

    /// Queue a job. Jobs submitted after shutdown are dropped (their reply channels
    /// close, which their waiters report as an error).
    pub fn submit(&self, job: impl FnOnce() + Send + 'static) {
        let mut q = self.shared.queue.lock();
        if q.1 {
            return;
        }
        q.0.push_back(Box::new(job));
        drop(q);
        self.shared.ready.notify_one();
    }
}

fn worker(s: &Shared) {
    loop {
        let job = {
            let mut q = s.queue.lock();
            loop {
                if let Some(j) = q.0.pop_front() {
                    break j;
                }
                if q.1 {
                    return;
                }
                s.ready.wait(&mut q);
            }
        };
        // A panic inside ONNX Runtime bindings must not take the worker down with it.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
            tracing::error!("an inference job panicked; its requests were failed");
        }
    }
}

impl Drop for InferencePool {
    fn drop(&mut self) {
        self.shared.queue.lock().1 = true;
        self.shared.ready.notify_all();
        for t in self.threads.lock().drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn runs_every_job_and_survives_a_panic() {
        let pool = InferencePool::new(2).unwrap();
        let n = Arc::new(AtomicUsize::new(0));
        pool.submit(|| panic!("boom"));
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..100 {
            let n = n.clone();
            let tx = tx.clone();
            pool.submit(move || {
                n.fetch_add(1, Ordering::Relaxed);
                let _ = tx.send(());
            });
        }
        for _ in 0..100 {
            rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        }
        assert_eq!(n.load(Ordering::Relaxed), 100);
    }
}
