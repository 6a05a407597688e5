//! The command line ([`Args`]) and the checked, resolved run it asks for
//! ([`Plan`]). Everything is bounded: users, rate, time and body size, and
//! the server and source addresses must be loopback.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use clap::Parser;

use crate::error::{LoadError, Result};

/// Most users (one WebSocket each) a run may open: one process may hold at
/// most 20,000 open files on the project's machines.
pub(crate) const MAX_USERS: usize = 19_000;
/// Longest measured run, and longest warm-up.
const MAX_DURATION: Duration = Duration::from_secs(3600);
const MAX_WARMUP: Duration = Duration::from_secs(600);
/// Longest wait for the last deliveries after the last send.
const MAX_DRAIN: Duration = Duration::from_secs(120);
/// Highest total send rate, in messages per second.
const MAX_RATE: f64 = 200_000.0;
/// Largest message body (the server refuses more than 16 KiB by default:
/// larger bodies are allowed so that `too_large` can be exercised).
const MAX_BODY_BYTES: usize = 1 << 20;
/// Writes per second one user may make before the server's default budget
/// answers `rate_limited` (its per-address budget, 50/s, is reached sooner
/// when many users share a source address): run the server with
/// `--user-rate 0 --addr-rate 0` for load tests.
pub(crate) const SERVER_RATE_LIMIT: f64 = 10.0;

/// Drives a running chat-server over its real contract (HTTP signup,
/// WebSocket) and measures send-to-delivery latency.
///
/// Users sign up, join their groups, connect, and then send on a fixed
/// open-loop schedule: latencies count from the time a message was due, so
/// a stalled client or server shows as latency instead of fewer sends.
/// Loopback servers only.
#[derive(Debug, Parser)]
#[command(name = "chat-load", version, about)]
pub(crate) struct Args {
    /// The server, as HOST:PORT or http://HOST:PORT, on a loopback address.
    #[arg(long, default_value = "127.0.0.1:8080", value_parser = parse_server)]
    pub(crate) server: SocketAddr,
    /// Another node of the same cluster (repeatable): sign-ups and groups
    /// go to `--server`, and user i's WebSocket to the i-th of `--server`
    /// and these in turn, so that sends cross nodes.
    #[arg(long = "node", value_parser = parse_server)]
    pub(crate) nodes: Vec<SocketAddr>,
    /// How many users (one WebSocket each).
    #[arg(long, default_value_t = 100)]
    pub(crate) users: usize,
    /// Deal the users round-robin into this many groups.
    #[arg(long, conflicts_with = "group_size")]
    pub(crate) groups: Option<usize>,
    /// Deal the users into groups of (at least) this many members.
    #[arg(long)]
    pub(crate) group_size: Option<usize>,
    /// Share of sends that go to a direct chat with a random other user,
    /// from 0 to 1; the rest go to the sender's group [default: 1 without
    /// groups, 0 with].
    #[arg(long)]
    pub(crate) direct_ratio: Option<f64>,
    /// Send rate: messages per second in all (`2000`), or per user (`2/user`).
    #[arg(long, default_value = "100", value_parser = parse_rate)]
    pub(crate) rate: Rate,
    /// Seconds measured, after the warm-up.
    #[arg(long, default_value = "10", value_parser = parse_seconds)]
    pub(crate) duration: Duration,
    /// Seconds of sending before measuring starts.
    #[arg(long, default_value = "2", value_parser = parse_seconds)]
    pub(crate) warmup: Duration,
    /// Seconds to wait after the last send for answers and deliveries still
    /// on their way; what has not come then counts as undelivered.
    #[arg(long, default_value = "5", value_parser = parse_seconds)]
    pub(crate) drain: Duration,
    /// Length of each message body in bytes (at least the send time stamp
    /// it carries, about 12 bytes).
    #[arg(long, default_value_t = 100)]
    pub(crate) body_bytes: usize,
    /// Sign-ups and WebSocket handshakes in flight at once during setup.
    #[arg(long, default_value_t = 64)]
    pub(crate) connect_concurrency: usize,
    /// Spread the WebSockets over these loopback source addresses, as a
    /// range `127.0.0.2-127.0.0.9` or a list `127.0.0.2,127.0.0.3`, so that no
    /// single address runs out of ephemeral ports [default: the OS picks].
    #[arg(long, value_parser = parse_sources)]
    pub(crate) source_addrs: Option<Sources>,
    /// The process id of the server (on this machine): its CPU time and
    /// memory over the measured window go into the report, per message and
    /// per delivery.
    #[arg(long)]
    pub(crate) server_pid: Option<u32>,
    /// Every receiver also sends `read` for what it acks (as a chat app
    /// with the conversation open does): read receipts for every message.
    #[arg(long)]
    pub(crate) read: bool,
    /// Every sender sends `typing` into the conversation before each send
    /// to a group.
    #[arg(long)]
    pub(crate) typing: bool,
    /// Print the report as one JSON object instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

/// A send rate as given on the command line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Rate {
    /// Messages per second across all users.
    Total(f64),
    /// Messages per second from each user.
    PerUser(f64),
}

/// Loopback source addresses to bind the client sockets to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Sources(pub(crate) Vec<Ipv4Addr>);

/// A checked run: every number resolved and within bounds.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    /// The server.
    pub(crate) server: SocketAddr,
    /// Where each user's WebSocket goes, in turn: the server, then the
    /// other nodes.
    pub(crate) nodes: Vec<SocketAddr>,
    /// How many users.
    pub(crate) users: usize,
    /// How many groups (0: direct chats only).
    pub(crate) groups: usize,
    /// Share of sends to direct chats.
    pub(crate) direct_ratio: f64,
    /// Messages per second in all.
    pub(crate) total_rate: f64,
    /// Measured time.
    pub(crate) duration: Duration,
    /// Unmeasured time before it.
    pub(crate) warmup: Duration,
    /// Longest wait for what is still on its way after the last send.
    pub(crate) drain: Duration,
    /// Body length.
    pub(crate) body_bytes: usize,
    /// Setup calls in flight at once.
    pub(crate) connect_concurrency: usize,
    /// Source addresses (empty: the OS picks).
    pub(crate) sources: Vec<Ipv4Addr>,
    /// The server's process, measured when given.
    pub(crate) server_pid: Option<u32>,
    /// Receivers send `read` too.
    pub(crate) read: bool,
    /// Senders send `typing` before group sends.
    pub(crate) typing: bool,
    /// JSON output.
    pub(crate) json: bool,
}

impl Args {
    /// Checks the bounds and resolves groups, ratio and rate.
    pub(crate) fn plan(self) -> Result<Plan> {
        let usage = |m: String| Err(LoadError::Usage(m));
        if !(2..=MAX_USERS).contains(&self.users) {
            return usage(format!("--users must be from 2 to {MAX_USERS}"));
        }
        let users = self.users;
        let groups = match (self.groups, self.group_size) {
            (Some(g), _) if g == 0 || g > users / 2 => {
                return usage(format!(
                    "--groups must be from 1 to {} (every group needs two members)",
                    users / 2
                ));
            }
            (Some(g), _) => g,
            (None, Some(s)) if s < 2 || s > users => {
                return usage(format!("--group-size must be from 2 to {users}"));
            }
            (None, Some(s)) => users / s,
            (None, None) => 0,
        };
        let direct_ratio = match self.direct_ratio {
            Some(r) if !(0.0..=1.0).contains(&r) => {
                return usage("--direct-ratio must be from 0 to 1".into());
            }
            Some(r) if groups == 0 && r < 1.0 => {
                return usage("--direct-ratio below 1 needs --groups or --group-size".into());
            }
            Some(r) => r,
            None if groups == 0 => 1.0,
            None => 0.0,
        };
        let total_rate = match self.rate {
            Rate::Total(r) => r,
            Rate::PerUser(r) => r * users as f64,
        };
        if !(total_rate > 0.0 && total_rate <= MAX_RATE) {
            return usage(format!(
                "the total rate must be above 0 and at most {MAX_RATE} messages/s"
            ));
        }
        let bounded = |name: &str, d: Duration, max: Duration| {
            if d > max {
                Err(LoadError::Usage(format!(
                    "--{name} must be at most {} s",
                    max.as_secs()
                )))
            } else {
                Ok(d)
            }
        };
        let duration = bounded("duration", self.duration, MAX_DURATION)?;
        if duration.is_zero() {
            return usage("--duration must be above 0".into());
        }
        let warmup = bounded("warmup", self.warmup, MAX_WARMUP)?;
        let drain = bounded("drain", self.drain, MAX_DRAIN)?;
        if self.body_bytes > MAX_BODY_BYTES {
            return usage(format!("--body-bytes must be at most {MAX_BODY_BYTES}"));
        }
        if !(1..=1024).contains(&self.connect_concurrency) {
            return usage("--connect-concurrency must be from 1 to 1024".into());
        }
        Ok(Plan {
            server: self.server,
            nodes: std::iter::once(self.server).chain(self.nodes).collect(),
            users,
            groups,
            direct_ratio,
            total_rate,
            duration,
            warmup,
            drain,
            body_bytes: self.body_bytes,
            connect_concurrency: self.connect_concurrency,
            sources: self.source_addrs.map(|s| s.0).unwrap_or_default(),
            server_pid: self.server_pid,
            read: self.read,
            typing: self.typing,
            json: self.json,
        })
    }
}

impl Plan {
    /// Messages per second from each user.
    pub(crate) fn per_user_rate(&self) -> f64 {
        self.total_rate / self.users as f64
    }
}

/// `HOST:PORT` or `http://HOST:PORT[/]`, with a loopback IP address: this
/// tool sends thousands of messages a second and must not be aimed at
/// someone else's server.
fn parse_server(s: &str) -> Result<SocketAddr, String> {
    let bare = s.strip_prefix("http://").unwrap_or(s).trim_end_matches('/');
    let addr: SocketAddr = if let Some(port) = bare.strip_prefix("localhost:") {
        let port: u16 = port.parse().map_err(|_| format!("bad port in {s:?}"))?;
        SocketAddr::from((Ipv4Addr::LOCALHOST, port))
    } else {
        bare.parse()
            .map_err(|_| format!("{s:?} is not IP:PORT (e.g. 127.0.0.1:8080)"))?
    };
    if !addr.ip().is_loopback() {
        return Err(format!(
            "{} is not a loopback address: chat-load only runs against a server on this machine",
            addr.ip()
        ));
    }
    Ok(addr)
}

fn parse_rate(s: &str) -> Result<Rate, String> {
    let (number, per_user) = match s.strip_suffix("/user") {
        Some(n) => (n, true),
        None => (s, false),
    };
    let r: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a rate such as 2000 or 2/user"))?;
    if !(r.is_finite() && r > 0.0) {
        return Err("the rate must be above 0".into());
    }
    Ok(if per_user {
        Rate::PerUser(r)
    } else {
        Rate::Total(r)
    })
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim_end_matches('s')
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(secs.is_finite() && (0.0..=1e6).contains(&secs)) {
        return Err(format!("{s:?} is not a number of seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// At most this many source addresses (a /24's worth).
const MAX_SOURCES: usize = 256;

fn parse_sources(s: &str) -> Result<Sources, String> {
    let ip = |t: &str| -> Result<Ipv4Addr, String> {
        let ip: Ipv4Addr = t
            .trim()
            .parse()
            .map_err(|_| format!("{t:?} is not an IPv4 address"))?;
        if !IpAddr::V4(ip).is_loopback() {
            return Err(format!("{ip} is not a loopback address"));
        }
        Ok(ip)
    };
    let addrs = if let Some((first, last)) = s.split_once('-') {
        let (first, last) = (u32::from(ip(first)?), u32::from(ip(last)?));
        if first > last || (last - first) as usize >= MAX_SOURCES {
            return Err(format!(
                "{s:?}: the range must go upwards and hold at most {MAX_SOURCES} addresses"
            ));
        }
        (first..=last).map(Ipv4Addr::from).collect()
    } else {
        s.split(',').map(ip).collect::<Result<Vec<_>, _>>()?
    };
    if addrs.len() > MAX_SOURCES {
        return Err(format!("at most {MAX_SOURCES} source addresses"));
    }
    Ok(Sources(addrs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(args: &[&str]) -> Result<Plan> {
        let mut argv = vec!["chat-load"];
        argv.extend_from_slice(args);
        Args::try_parse_from(argv)
            .map_err(|e| LoadError::Usage(e.to_string()))?
            .plan()
    }

    #[test]
    fn servers_must_be_loopback() {
        assert_eq!(
            parse_server("http://127.0.0.1:9000/").unwrap(),
            "127.0.0.1:9000".parse().unwrap()
        );
        assert_eq!(
            parse_server("localhost:80").unwrap(),
            "127.0.0.1:80".parse().unwrap()
        );
        assert!(parse_server("[::1]:80").is_ok());
        assert!(parse_server("127.3.4.5:80").is_ok());
        assert!(parse_server("10.0.0.1:8080").is_err());
        assert!(parse_server("example.com:80").is_err());
    }

    #[test]
    fn rates_are_total_or_per_user() {
        assert_eq!(parse_rate("2000").unwrap(), Rate::Total(2000.0));
        assert_eq!(parse_rate("2/user").unwrap(), Rate::PerUser(2.0));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("fast").is_err());
        let p = plan(&["--users", "1000", "--rate", "2000"]).unwrap();
        assert_eq!(p.per_user_rate(), 2.0);
        let p = plan(&["--users", "1000", "--rate", "0.5/user"]).unwrap();
        assert_eq!(p.total_rate, 500.0);
        assert!(plan(&["--rate", "1000000"]).is_err());
    }

    #[test]
    fn sources_are_ranges_or_lists_of_loopback_addresses() {
        let s = parse_sources("127.0.0.2-127.0.0.9").unwrap();
        assert_eq!(s.0.len(), 8);
        assert_eq!(s.0[7], Ipv4Addr::new(127, 0, 0, 9));
        assert_eq!(parse_sources("127.0.0.2,127.0.0.5").unwrap().0.len(), 2);
        assert!(parse_sources("127.0.0.9-127.0.0.2").is_err());
        assert!(parse_sources("127.0.0.2-127.0.9.2").is_err());
        assert!(parse_sources("192.168.1.2").is_err());
    }

    #[test]
    fn groups_and_ratio_resolve() {
        let p = plan(&["--users", "1000", "--group-size", "50"]).unwrap();
        assert_eq!((p.groups, p.direct_ratio), (20, 0.0));
        let p = plan(&["--users", "10", "--groups", "2", "--direct-ratio", "0.5"]).unwrap();
        assert_eq!((p.groups, p.direct_ratio), (2, 0.5));
        let p = plan(&["--users", "10"]).unwrap();
        assert_eq!((p.groups, p.direct_ratio), (0, 1.0));
        assert!(plan(&["--users", "10", "--groups", "6"]).is_err());
        assert!(plan(&["--users", "10", "--direct-ratio", "0.5"]).is_err());
        assert!(plan(&["--users", "10", "--groups", "2", "--group-size", "5"]).is_err());
        assert!(plan(&["--users", "1"]).is_err());
        assert!(plan(&["--users", "20000"]).is_err());
        assert!(plan(&["--duration", "0"]).is_err());
        assert!(plan(&["--duration", "7200"]).is_err());
    }
}
