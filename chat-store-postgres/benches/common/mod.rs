//! Shared by the benches: knobs from the environment, a clock that also
//! counts this process's CPU, percentiles, and plain connections.

#![allow(dead_code, unreachable_pub)] // Each bench uses a part of it.

use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};

/// A knob from the environment, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A list knob ("1000,10000"), or `default`.
pub fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(name)
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .filter(|v: &Vec<usize>| !v.is_empty())
        .unwrap_or_else(|| default.to_vec())
}

/// CPU seconds used so far by this process (utime + stime from
/// /proc/self/stat; zero where it is not readable). The server's share is
/// not measured: other clients of a shared server would be counted too.
pub fn cpu_seconds() -> f64 {
    const HZ: f64 = 100.0;
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // The fields after the command name, which is in parentheses; utime
    // and stime are fields 14 and 15 of the file, 12 and 13 of these.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (get(11) + get(12)) / HZ
}

/// One timed run: items per second, and CPU microseconds per item spent
/// by this process (the client side).
#[derive(Clone, Copy, Debug)]
pub struct Measure {
    pub rate: f64,
    pub client_us: f64,
}

/// Wall time and this process's CPU since `start`.
pub struct Clock {
    started: Instant,
    cpu: f64,
}

impl Clock {
    pub fn start() -> Self {
        Self {
            started: Instant::now(),
            cpu: cpu_seconds(),
        }
    }

    pub fn finish(self, items: usize) -> Measure {
        let elapsed = self.started.elapsed().as_secs_f64();
        let n = items as f64;
        Measure {
            rate: n / elapsed,
            client_us: (cpu_seconds() - self.cpu) * 1e6 / n,
        }
    }
}

/// The best of `runs` by rate, printed with every run's rate.
pub fn report(name: &str, runs: &[Measure]) -> f64 {
    let best = runs
        .iter()
        .copied()
        .max_by(|a, b| a.rate.total_cmp(&b.rate))
        .expect("at least one run");
    let all: Vec<String> = runs.iter().map(|m| format!("{:.0}", m.rate)).collect();
    println!(
        "{name:<52} best {:>8.0}/s  (runs: {})  client cpu {:.1} us each",
        best.rate,
        all.join(", "),
        best.client_us
    );
    best.rate
}

/// Latencies in order, to read percentiles from.
pub struct Latencies(Vec<Duration>);

impl Latencies {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    pub fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    /// The `p`-th percentile (0..=100) in milliseconds.
    pub fn ms(&mut self, p: f64) -> f64 {
        self.0.sort();
        if self.0.is_empty() {
            return 0.0;
        }
        let i = ((self.0.len() - 1) as f64 * p / 100.0).round() as usize;
        self.0[i].as_secs_f64() * 1e3
    }

    pub fn summary(&mut self) -> String {
        format!(
            "p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  ({} samples)",
            self.ms(50.0),
            self.ms(90.0),
            self.ms(99.0),
            self.0.len()
        )
    }
}

/// A plain connection to `url` working in `schema`.
pub async fn plain(url: &str, schema: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(connection);
    client
        .batch_execute(&format!("SET search_path TO {schema}"))
        .await
        .expect("search_path");
    client
}

/// The adapter's column value for an id (top bit flipped, see src/ids.rs).
pub fn db_id(id: u64) -> i64 {
    i64::from_ne_bytes((id ^ (1 << 63)).to_ne_bytes())
}
