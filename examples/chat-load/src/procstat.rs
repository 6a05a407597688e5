//! CPU time and memory of a process on this machine, from `/proc`: what the
//! server (given by `--server-pid`) and this load generator spent over the
//! measured window. CPU per message is the figure that says how much
//! hardware a chat server needs; throughput alone hides it on a box where
//! the load generator competes for the same cores.

use std::time::Duration;

/// A process's CPU time (user + system, all threads) at one moment.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CpuSample(Duration);

impl CpuSample {
    /// The CPU time `pid` has used so far (`None`: this process), or `None`
    /// when /proc cannot tell (the process is gone, or this is not Linux).
    pub(crate) fn of(pid: Option<u32>) -> Option<Self> {
        let path = match pid {
            Some(pid) => format!("/proc/{pid}/stat"),
            None => "/proc/self/stat".to_owned(),
        };
        let stat = std::fs::read_to_string(path).ok()?;
        parse_cpu(&stat, clock_ticks_per_second()).map(Self)
    }

    /// CPU time used between `self` and the later sample `later`.
    pub(crate) fn until(self, later: Self) -> Duration {
        later.0.saturating_sub(self.0)
    }
}

/// The resident memory of `pid` in KiB (`VmRSS`), when /proc tells it.
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_rss_kib(&status)
}

/// The unit of CPU times in /proc (`USER_HZ`): part of Linux's user-space
/// ABI, 100 on every architecture this runs on (x86, arm, riscv), whatever
/// the kernel's own tick. A 10 ms resolution, so windows are seconds long.
fn clock_ticks_per_second() -> u64 {
    100
}

/// utime + stime of a `/proc/PID/stat` line. The second field (the command
/// name) may hold spaces and parentheses, so fields are counted after its
/// last `)`: utime and stime are then the 12th and 13th.
fn parse_cpu(stat: &str, hz: u64) -> Option<Duration> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = utime + stime;
    Some(Duration::from_nanos(
        ticks.saturating_mul(1_000_000_000) / hz.max(1),
    ))
}

fn parse_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_fields_are_counted_after_the_command_name() {
        // A command name with a space and a parenthesis, as a process may have.
        let stat =
            "4242 (chat server (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 5 0 1 1 1";
        assert_eq!(parse_cpu(stat, 100), Some(Duration::from_secs(3)));
        assert_eq!(parse_cpu("garbage", 100), None);
    }

    #[test]
    fn rss_is_read_from_status() {
        let status = "Name:\tchat-server\nVmPeak:\t 9000 kB\nVmRSS:\t   12345 kB\n";
        assert_eq!(parse_rss_kib(status), Some(12345));
        assert_eq!(parse_rss_kib("Name: x\n"), None);
    }

    #[test]
    fn this_process_has_a_cpu_time() {
        let a = CpuSample::of(None).expect("/proc/self/stat");
        // Burn a little CPU so the second sample cannot be earlier.
        let mut x = 0u64;
        for i in 0..1_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let b = CpuSample::of(None).expect("/proc/self/stat");
        assert!(a.until(b) <= Duration::from_secs(60));
        assert!(rss_kib(std::process::id()).is_some_and(|kib| kib > 0));
    }
}
