//! The end-of-run [`Report`], as text or as one JSON object.

use std::collections::BTreeMap;
use std::fmt::{self, Display};
use std::time::Duration;

use serde::Serialize;

use crate::args::{Plan, SERVER_RATE_LIMIT};
use crate::stats::{Percentiles, Stats};

/// Everything a run measured.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    /// Users asked for.
    pub(crate) users: usize,
    /// Groups (0: direct chats only).
    pub(crate) groups: usize,
    /// Share of sends to direct chats.
    pub(crate) direct_ratio: f64,
    /// The schedule's rate, messages per second in all.
    pub(crate) target_rate: f64,
    /// Measured seconds.
    pub(crate) duration_s: f64,
    /// Warm-up seconds before them.
    pub(crate) warmup_s: f64,
    /// Body length in bytes.
    pub(crate) body_bytes: usize,
    /// Seconds of sign-up, groups and connecting.
    pub(crate) setup_s: f64,
    /// WebSockets opened, failed and dropped.
    pub(crate) connections: Connections,
    /// Sends written in the measured window.
    pub(crate) messages_sent: u64,
    /// The same per second.
    pub(crate) messages_per_s: f64,
    /// From due time to the `sent` answer.
    pub(crate) sent_latency_ms: Percentiles,
    /// From due time to the `message` frame at each recipient.
    pub(crate) delivery_latency_ms: Percentiles,
    /// `message` frames received for measured sends.
    pub(crate) deliveries: u64,
    /// The same per second.
    pub(crate) deliveries_per_s: f64,
    /// From due time to the moment the client wrote the send (the client's
    /// own backlog; large values mean the client machine is saturated).
    pub(crate) schedule_lag_ms: Percentiles,
    /// `error` frames by code (the whole run, warm-up included).
    pub(crate) errors: BTreeMap<String, u64>,
    /// Sends (the whole run) that got neither `sent` nor `error`.
    pub(crate) unanswered_sends: u64,
    /// Deliveries promised by `sent` answers (the whole run) that never came.
    pub(crate) undelivered: u64,
    /// Seconds waited after the last send for the rest to arrive.
    pub(crate) drain_s: f64,
    /// Closes before the end by WebSocket close code (4000: slow consumer).
    pub(crate) closes: BTreeMap<String, u64>,
    /// Receipt frames (single and coalesced) the clients got.
    pub(crate) receipt_frames: u64,
    /// CPU and memory over the measured window, when measured.
    pub(crate) cpu: CpuReport,
}

/// CPU time over the measured window, per message and per delivery.
#[derive(Debug, Default, Serialize)]
pub(crate) struct CpuReport {
    /// The server's CPU seconds (user + system), with `--server-pid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) server_s: Option<f64>,
    /// The server's CPU per message sent, in µs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) server_us_per_message: Option<f64>,
    /// The server's CPU per delivery (a `message` frame at a recipient), in µs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) server_us_per_delivery: Option<f64>,
    /// The server's resident memory at the end of the window, in KiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) server_rss_kib: Option<u64>,
    /// This load generator's own CPU seconds (it shares the machine).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) client_s: Option<f64>,
}

/// What `/proc` said about the measured window.
pub(crate) struct Usage {
    /// The server's CPU time over it.
    pub(crate) server_cpu: Option<Duration>,
    /// This process's CPU time over it.
    pub(crate) client_cpu: Option<Duration>,
    /// The server's resident memory after it.
    pub(crate) server_rss_kib: Option<u64>,
}

/// The connections of a run.
#[derive(Debug, Serialize)]
pub(crate) struct Connections {
    /// Opened (authenticated, first sync done).
    pub(crate) opened: usize,
    /// Failed to open.
    pub(crate) failed: usize,
    /// Closed or failed before the end of the run.
    pub(crate) dropped: usize,
    /// Why the first failed one failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) first_failure: Option<String>,
}

/// What the run loop hands over for the report.
pub(crate) struct Outcome {
    /// All connections' counts, merged.
    pub(crate) stats: Stats,
    /// Connections.
    pub(crate) connections: Connections,
    /// Setup time.
    pub(crate) setup: Duration,
    /// Sends never answered, deliveries never received.
    pub(crate) missing: (u64, u64),
    /// Time waited after the last send.
    pub(crate) drain: Duration,
    /// CPU and memory over the measured window.
    pub(crate) usage: Usage,
}

impl Report {
    /// The report of a run of `plan`.
    pub(crate) fn new(plan: &Plan, outcome: Outcome) -> Self {
        let secs = plan.duration.as_secs_f64();
        let stats = outcome.stats;
        let per = |cpu: Option<Duration>, n: u64| {
            cpu.filter(|_| n > 0)
                .map(|c| c.as_secs_f64() * 1e6 / n as f64)
        };
        let usage = &outcome.usage;
        let cpu = CpuReport {
            server_s: usage.server_cpu.map(|c| c.as_secs_f64()),
            server_us_per_message: per(usage.server_cpu, stats.sends),
            server_us_per_delivery: per(usage.server_cpu, stats.deliveries),
            server_rss_kib: usage.server_rss_kib,
            client_s: usage.client_cpu.map(|c| c.as_secs_f64()),
        };
        Self {
            users: plan.users,
            groups: plan.groups,
            direct_ratio: plan.direct_ratio,
            target_rate: plan.total_rate,
            duration_s: secs,
            warmup_s: plan.warmup.as_secs_f64(),
            body_bytes: plan.body_bytes,
            setup_s: outcome.setup.as_secs_f64(),
            connections: outcome.connections,
            messages_sent: stats.sends,
            messages_per_s: stats.sends as f64 / secs,
            sent_latency_ms: stats.sent.summary(),
            delivery_latency_ms: stats.delivery.summary(),
            deliveries: stats.deliveries,
            deliveries_per_s: stats.deliveries as f64 / secs,
            schedule_lag_ms: stats.lag.summary(),
            errors: stats.errors,
            unanswered_sends: outcome.missing.0,
            undelivered: outcome.missing.1,
            drain_s: outcome.drain.as_secs_f64(),
            closes: stats.closes,
            receipt_frames: stats.receipt_frames,
            cpu,
        }
    }

    /// The report as one line of JSON.
    pub(crate) fn to_json(&self) -> String {
        // Numbers, strings and maps with string keys only: always serializes.
        serde_json::to_string(self).expect("the report serializes")
    }
}

impl Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chats = match (self.groups, self.direct_ratio) {
            (0, _) => "direct chats".to_owned(),
            (g, 0.0) => format!("{g} groups"),
            (g, r) => format!("{g} groups, {:.0}% of sends direct", r * 100.0),
        };
        writeln!(
            f,
            "chat-load: {} users, {chats}, {} msgs/s scheduled, {} s measured after {} s warm-up, {}-byte bodies",
            self.users, self.target_rate, self.duration_s, self.warmup_s, self.body_bytes
        )?;
        let c = &self.connections;
        writeln!(
            f,
            "connections: {} opened, {} failed, {} dropped (setup {:.1} s)",
            c.opened, c.failed, c.dropped, self.setup_s
        )?;
        if let Some(why) = &c.first_failure {
            writeln!(f, "  first failure: {why}")?;
        }
        writeln!(
            f,
            "sent:        {} messages, {:.1}/s",
            self.messages_sent, self.messages_per_s
        )?;
        writeln!(f, "  send → sent       {}", Row(&self.sent_latency_ms))?;
        writeln!(
            f,
            "delivered:   {} messages, {:.1}/s",
            self.deliveries, self.deliveries_per_s
        )?;
        writeln!(f, "  send → delivered  {}", Row(&self.delivery_latency_ms))?;
        writeln!(f, "  client lag        {}", Row(&self.schedule_lag_ms))?;
        if self.errors.is_empty() {
            writeln!(f, "errors:      none")?;
        } else {
            let list: Vec<String> = self
                .errors
                .iter()
                .map(|(c, n)| format!("{c} {n}"))
                .collect();
            writeln!(f, "errors:      {}", list.join(", "))?;
        }
        writeln!(
            f,
            "unanswered sends {}, undelivered {} (waited {:.2} s after the last send)",
            self.unanswered_sends, self.undelivered, self.drain_s
        )?;
        if !self.closes.is_empty() {
            let list: Vec<String> = self
                .closes
                .iter()
                .map(|(c, n)| format!("{c} ×{n}"))
                .collect();
            writeln!(f, "closed early by code: {}", list.join(", "))?;
        }
        if self.receipt_frames > 0 {
            writeln!(f, "receipt frames: {}", self.receipt_frames)?;
        }
        let c = &self.cpu;
        if let Some(server) = c.server_s {
            writeln!(
                f,
                "server CPU:  {server:.2} s in the window, {} µs/message, {} µs/delivery, RSS {}",
                c.server_us_per_message
                    .map_or("-".into(), |v| format!("{v:.1}")),
                c.server_us_per_delivery
                    .map_or("-".into(), |v| format!("{v:.2}")),
                c.server_rss_kib
                    .map_or("-".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0)),
            )?;
        }
        if let Some(client) = c.client_s {
            writeln!(f, "client CPU:  {client:.2} s in the window")?;
        }
        let per_user = self.target_rate / self.users as f64;
        if per_user > SERVER_RATE_LIMIT {
            writeln!(
                f,
                "note: {per_user:.0} sends/s per user is above the server's default budget of {SERVER_RATE_LIMIT}/s per user"
            )?;
        }
        Ok(())
    }
}

/// One latency line: percentiles in milliseconds.
struct Row<'a>(&'a Percentiles);

impl Display for Row<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.0;
        write!(
            f,
            "p50 {:.2} ms  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
            p.p50, p.p90, p.p99, p.p999, p.max
        )
    }
}
