//! `abuse-probe`: attacks a running chat-server the way docs/security.md
//! measures it, and prints what happened.
//!
//! ```text
//! abuse-probe login-storm --server 127.0.0.1:8080 --pid PID --concurrency 256 --rounds 4
//! abuse-probe slowloris  --server 127.0.0.1:8080 --sockets 200
//! abuse-probe throttle   --server 127.0.0.1:8080 --attempts 12
//! ```
//!
//! - `login-storm`: `concurrency` wrong-password logins at once, `rounds`
//!   times, each for a different username; samples the server's resident
//!   memory (`/proc/PID/status`) every 10 ms and reports idle, peak and
//!   after, and how the logins were answered.
//! - `slowloris`: opens `sockets` connections that trickle a request
//!   header one byte a second, and one that stays silent; reports how many
//!   the server closed and after how long, and whether /healthz answers
//!   meanwhile.
//! - `throttle`: wrong passwords for one username, one after the other,
//!   waiting out each `Retry-After`: the lockout curve.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    probe: Probe,
}

#[derive(Subcommand)]
enum Probe {
    /// Concurrent wrong-password logins, with the server's memory.
    LoginStorm {
        #[arg(long, default_value = "127.0.0.1:8080")]
        server: SocketAddr,
        /// The server's process id (for /proc/PID/status).
        #[arg(long)]
        pid: u32,
        #[arg(long, default_value_t = 256)]
        concurrency: usize,
        #[arg(long, default_value_t = 4)]
        rounds: usize,
    },
    /// Slow headers and a silent socket.
    Slowloris {
        #[arg(long, default_value = "127.0.0.1:8080")]
        server: SocketAddr,
        #[arg(long, default_value_t = 200)]
        sockets: usize,
        /// How long to watch, in seconds.
        #[arg(long, default_value_t = 90)]
        watch_secs: u64,
    },
    /// The login throttle's lockout curve for one username.
    Throttle {
        #[arg(long, default_value = "127.0.0.1:8080")]
        server: SocketAddr,
        #[arg(long, default_value_t = 12)]
        attempts: usize,
        #[arg(long, default_value = "throttle-probe")]
        username: String,
    },
}

#[tokio::main]
async fn main() {
    match Args::parse().probe {
        Probe::LoginStorm {
            server,
            pid,
            concurrency,
            rounds,
        } => login_storm(server, pid, concurrency, rounds).await,
        Probe::Slowloris {
            server,
            sockets,
            watch_secs,
        } => slowloris(server, sockets, Duration::from_secs(watch_secs)).await,
        Probe::Throttle {
            server,
            attempts,
            username,
        } => throttle(server, attempts, &username).await,
    }
}

/// VmRSS of `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn login_storm(server: SocketAddr, pid: u32, concurrency: usize, rounds: usize) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("an HTTP client");
    let idle = rss_kib(pid);
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let sampler = tokio::spawn(async move {
        let mut peak = 0;
        loop {
            peak = peak.max(rss_kib(pid));
            tokio::select! {
                _ = &mut stopped => return peak,
                () = tokio::time::sleep(Duration::from_millis(10)) => {}
            }
        }
    });
    let started = Instant::now();
    let mut answers: BTreeMap<u16, usize> = BTreeMap::new();
    for round in 0..rounds {
        let calls: Vec<_> = (0..concurrency)
            .map(|i| {
                let http = http.clone();
                tokio::spawn(async move {
                    let body = serde_json::json!({
                        "username": format!("storm{round}x{i}"),
                        "password": "not the password",
                    });
                    match http
                        .post(format!("http://{server}/api/login"))
                        .json(&body)
                        .send()
                        .await
                    {
                        Ok(res) => res.status().as_u16(),
                        Err(e) => {
                            if std::env::var_os("PROBE_DEBUG").is_some() {
                                eprintln!("{e:?}");
                            }
                            0
                        }
                    }
                })
            })
            .collect();
        for call in calls {
            *answers.entry(call.await.unwrap_or(0)).or_default() += 1;
        }
    }
    let took = started.elapsed();
    let _ = stop.send(());
    let peak = sampler.await.unwrap_or(0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(pid);
    println!(
        "login storm: {rounds} rounds of {concurrency} concurrent wrong-password logins in {:.1} s",
        took.as_secs_f64()
    );
    println!(
        "server RSS: idle {:.1} MiB, peak {:.1} MiB (+{:.1} MiB), 2 s after {:.1} MiB",
        idle as f64 / 1024.0,
        peak as f64 / 1024.0,
        peak.saturating_sub(idle) as f64 / 1024.0,
        after as f64 / 1024.0
    );
    println!("answers (status: count, 0 = no answer): {answers:?}");
}

async fn slowloris(server: SocketAddr, sockets: usize, watch: Duration) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..sockets {
        tasks.push(tokio::spawn(async move {
            let mut tcp = TcpStream::connect(server).await.ok()?;
            let opened = Instant::now();
            let header = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow-{i}: ");
            let mut buf = [0u8; 1024];
            for b in header.bytes().cycle() {
                if tcp.write_all(&[b]).await.is_err() {
                    return Some(opened.elapsed());
                }
                tokio::select! {
                    read = tcp.read(&mut buf) => {
                        if matches!(read, Ok(0) | Err(_)) {
                            return Some(opened.elapsed());
                        }
                    }
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                if opened.elapsed() > watch {
                    return None;
                }
            }
            None
        }));
    }
    let silent = tokio::spawn(async move {
        let mut tcp = TcpStream::connect(server).await.ok()?;
        let opened = Instant::now();
        let mut buf = [0u8; 64];
        match tokio::time::timeout(watch, tcp.read(&mut buf)).await {
            Ok(_) => Some(opened.elapsed()),
            Err(_) => None,
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let health = reqwest::get(format!("http://{server}/healthz"))
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    let mut closed = Vec::new();
    let mut open = 0;
    for t in tasks {
        match t.await.ok().flatten() {
            Some(after) => closed.push(after),
            None => open += 1,
        }
    }
    closed.sort();
    let pick = |q: f64| {
        closed
            .get(((closed.len() as f64 - 1.0) * q) as usize)
            .map_or(0.0, |d| d.as_secs_f64())
    };
    println!(
        "slowloris: {sockets} sockets trickling a header 1 byte/s: {} closed by the server \
         (after {:.1} s min, {:.1} s median, {:.1} s max), {open} still open after {} s",
        closed.len(),
        pick(0.0),
        pick(0.5),
        pick(1.0),
        watch.as_secs()
    );
    match silent.await.ok().flatten() {
        Some(after) => println!(
            "silent socket: closed by the server after {:.1} s",
            after.as_secs_f64()
        ),
        None => println!("silent socket: still open after {} s", watch.as_secs()),
    }
    println!(
        "/healthz during the attack: {health}; whole probe {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

async fn throttle(server: SocketAddr, attempts: usize, username: &str) {
    let http = reqwest::Client::new();
    let started = Instant::now();
    println!("attempt  at (s)  status  retry-after (s)");
    for n in 1..=attempts {
        let res = http
            .post(format!("http://{server}/api/login"))
            .json(&serde_json::json!({"username": username, "password": "a wrong password"}))
            .send()
            .await
            .expect("the server answers");
        let status = res.status().as_u16();
        let retry: Option<u64> = res
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        println!(
            "{n:>7}  {:>6.1}  {status:>6}  {}",
            started.elapsed().as_secs_f64(),
            retry.map_or("-".to_owned(), |r| r.to_string())
        );
        if let Some(wait) = retry {
            // Wait out the lockout, then try again: the next failure
            // doubles it.
            tokio::time::sleep(Duration::from_secs(wait)).await;
        }
    }
}
