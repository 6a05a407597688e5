//! The harness: a chat server started in-process (chat_server's library) on
//! a free port, and the `chat-cli` binary run against it as a process, each
//! user with its own session file.

#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use chat_server::{Bound, Config};
use tokio::sync::oneshot;

/// How long one run of the client may take before the test fails as hung
/// (a guard against a hang, not a speed check).
const HANG: Duration = Duration::from_secs(60);

/// A chat server running on its own runtime for the length of a test.
pub struct Server {
    pub url: String,
    dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Server {
    /// A server on the memory store, with fast password hashing.
    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            insecure_fast_hashing: true,
            jwt_secret: Some("the chat-cli test secret, 32+ bytes".into()),
            ..Config::default()
        };
        let bound = runtime
            .block_on(Bound::bind(&config))
            .expect("server starts");
        let url = format!("http://{}", bound.local_addr());
        let (stop, stopped) = oneshot::channel::<()>();
        runtime.spawn(async move {
            bound
                .serve(async move {
                    let _ = stopped.await;
                })
                .await
                .expect("server runs");
        });
        Self {
            url,
            dir: tempfile::tempdir().unwrap(),
            stop: Some(stop),
            runtime: Some(runtime),
        }
    }

    /// The session file of `user` (one per user, so that users do not mix).
    pub fn session(&self, user: &str) -> PathBuf {
        self.dir.path().join(format!("{user}.json"))
    }

    /// `chat-cli --server URL --session FILE` for `user`, with no CHAT_*
    /// variables from the environment of the test run.
    pub fn cli(&self, user: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chat-cli"));
        cmd.env_remove("CHAT_SERVER")
            .env_remove("CHAT_TOKEN")
            .env_remove("CHAT_SESSION")
            .arg("--server")
            .arg(&self.url)
            .arg("--session")
            .arg(self.session(user));
        cmd
    }

    /// Runs `chat-cli ARGS` as `user`; expects success and returns stdout.
    pub fn ok(&self, user: &str, args: &[&str]) -> String {
        let out = run(self.cli(user).args(args), None);
        assert!(
            out.status.success(),
            "chat-cli {args:?} as {user} failed: {}\nstdout: {}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout),
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs `chat-cli ARGS` as `user`; expects failure and returns stderr.
    pub fn fails(&self, user: &str, args: &[&str]) -> String {
        let out = run(self.cli(user).args(args), None);
        assert!(
            !out.status.success(),
            "chat-cli {args:?} as {user} should fail; stdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// Signs `user` up (password `pw-USER`) and returns its user id.
    pub fn signup(&self, user: &str) -> String {
        let password = format!("password-{user}");
        self.ok(user, &["signup", user, &password])
            .trim()
            .to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

/// Runs a command to its end, with `input` on its stdin (then closed), and
/// kills it if it outlives [`HANG`].
pub fn run(cmd: &mut Command, input: Option<&str>) -> Output {
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chat-cli starts");
    if let Some(input) = input {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
        // Dropping stdin closes it: the end of input.
    }
    let stdout = reader(child.stdout.take().unwrap());
    let stderr = reader(child.stderr.take().unwrap());
    let status = wait(&mut child);
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

fn reader(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        pipe.read_to_end(&mut bytes).unwrap();
        bytes
    })
}

fn wait(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + HANG;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chat-cli hung for {HANG:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The JSON values of a JSON-lines output.
pub fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}")))
        .collect()
}
