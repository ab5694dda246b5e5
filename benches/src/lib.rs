//! Shared helpers for insitu's benchmarks: timing loops and percentile reports.

use std::time::Instant;

/// Latency samples of one workload, in microseconds.
pub struct Samples {
    /// What was measured.
    pub name: String,
    us: Vec<f64>,
}

impl Samples {
    /// Time `iters` calls of `f` after `warmup` untimed ones.
    pub fn measure(
        name: impl Into<String>,
        warmup: usize,
        iters: usize,
        mut f: impl FnMut(),
    ) -> Samples {
        for _ in 0..warmup {
            f();
        }
        let mut us = Vec::with_capacity(iters);
        for _ in 0..iters {
            let t = Instant::now();
            f();
            us.push(t.elapsed().as_secs_f64() * 1e6);
        }
        us.sort_by(|a, b| a.total_cmp(b));
        Samples {
            name: name.into(),
            us,
        }
    }

    /// The `p`-th percentile (0..=100), microseconds.
    pub fn pct(&self, p: f64) -> f64 {
        if self.us.is_empty() {
            return f64::NAN;
        }
        let i = ((p / 100.0) * (self.us.len() - 1) as f64).round() as usize;
        self.us[i.min(self.us.len() - 1)]
    }
}

/// Print rows of samples with their p50 / p99 and the ratio of p50 to `baseline`'s.
pub fn report(title: &str, baseline: &Samples, rows: &[&Samples]) {
    println!("\n{title}");
    println!(
        "{:<44} {:>10} {:>10} {:>12}",
        "workload", "p50 us", "p99 us", "p50 / base"
    );
    for s in std::iter::once(baseline).chain(rows.iter().copied()) {
        println!(
            "{:<44} {:>10.2} {:>10.2} {:>11.2}x",
            s.name,
            s.pct(50.0),
            s.pct(99.0),
            s.pct(50.0) / baseline.pct(50.0)
        );
    }
}
