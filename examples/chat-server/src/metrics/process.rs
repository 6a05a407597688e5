//! The process's own metrics under the names every Prometheus client uses
//! (`process_cpu_seconds_total`, `process_resident_memory_bytes`, …), read
//! from `/proc/self` at each scrape. On systems without `/proc` they stay 0.

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// Gauges refreshed at each scrape. CPU time is a gauge here holding a
/// counter's value: the registry cannot hold a counter whose value is
/// set, and the name keeps the usual `_total` so dashboards find it.
#[derive(Default)]
pub(super) struct ProcessMetrics {
    cpu_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    resident_bytes: Gauge,
    virtual_bytes: Gauge,
    open_fds: Gauge,
    max_fds: Gauge,
    start_time: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl ProcessMetrics {
    pub(super) fn register(&self, r: &mut Registry) {
        r.register(
            "process_cpu_seconds_total",
            "User and system CPU time spent, in seconds",
            self.cpu_seconds.clone(),
        );
        r.register(
            "process_resident_memory_bytes",
            "Resident memory size, in bytes",
            self.resident_bytes.clone(),
        );
        r.register(
            "process_virtual_memory_bytes",
            "Virtual memory size, in bytes",
            self.virtual_bytes.clone(),
        );
        r.register(
            "process_open_fds",
            "Open file descriptors (sockets included)",
            self.open_fds.clone(),
        );
        r.register(
            "process_max_fds",
            "The open-file limit (soft)",
            self.max_fds.clone(),
        );
        r.register(
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, in seconds",
            self.start_time.clone(),
        );
        r.register(
            "chat_build",
            "The server's version, as a label",
            Info::new([("version", env!("CARGO_PKG_VERSION"))]),
        );
    }

    /// Reads the process's figures now.
    pub(super) fn refresh(&self) {
        #[cfg(target_os = "linux")]
        if let Some(now) = linux::read() {
            self.cpu_seconds.set(now.cpu_seconds);
            self.resident_bytes.set(now.resident_bytes);
            self.virtual_bytes.set(now.virtual_bytes);
            self.open_fds.set(now.open_fds);
            self.max_fds.set(now.max_fds);
            self.start_time.set(now.start_time);
        }
    }
}

#[cfg(target_os = "linux")]
mod linux {
    /// One reading of `/proc/self`.
    pub(super) struct Reading {
        pub(super) cpu_seconds: f64,
        pub(super) resident_bytes: i64,
        pub(super) virtual_bytes: i64,
        pub(super) open_fds: i64,
        pub(super) max_fds: i64,
        pub(super) start_time: f64,
    }

    pub(super) fn read() -> Option<Reading> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The command name (field 2) may hold spaces and parentheses: the
        // fields counted here start after its closing parenthesis, with
        // field 3 (state) at index 0.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
        let ticks = rustix::param::clock_ticks_per_second() as f64;
        let page = rustix::param::page_size() as u64;
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("btime ")?.trim().parse::<u64>().ok())?;
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count();
        let max_fds = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(u64::MAX);
        Some(Reading {
            cpu_seconds: (field(14)? + field(15)?) as f64 / ticks,
            resident_bytes: i64::try_from(field(24)? * page).unwrap_or(i64::MAX),
            virtual_bytes: i64::try_from(field(23)?).unwrap_or(i64::MAX),
            // read_dir's own descriptor is counted too: one more than the
            // process holds between scrapes.
            open_fds: i64::try_from(open_fds.saturating_sub(1)).unwrap_or(i64::MAX),
            max_fds: i64::try_from(max_fds).unwrap_or(i64::MAX),
            start_time: boot as f64 + field(22)? as f64 / ticks,
        })
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn this_process_reads_plausibly() {
            let r = super::read().expect("/proc/self reads on Linux");
            assert!(r.resident_bytes > 1024 * 1024, "{}", r.resident_bytes);
            assert!(r.virtual_bytes >= r.resident_bytes);
            assert!(r.open_fds >= 3 && r.open_fds <= r.max_fds);
            assert!(r.start_time > 1.6e9, "{}", r.start_time);
            assert!(r.cpu_seconds >= 0.0);
        }
    }
}
