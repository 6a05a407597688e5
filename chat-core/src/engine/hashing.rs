//! [`PasswordHashing`]: argon2id on a fixed pool of threads, each with its
//! own hashing memory allocated once, behind a bounded queue.
//!
//! Why not `spawn_blocking` per hash: argon2 fills 19 MiB per hash, and a
//! login storm then ran up to 512 blocking threads at once, each leaving
//! its memory in its own malloc arena (a storm of 256 bad logins took the
//! server from 2.7 to 7.1 GB, never given back). Here at most `threads`
//! hashes run at once, each in memory its thread reuses, so the hashing
//! memory is `threads` × 19 MiB whatever the load; requests past the
//! queue's bound are refused at once ([`Error::Unavailable`], 503) instead
//! of waiting without end.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::error::{Error, Result};

/// Stored hashes whose parameters ask for more memory than this are not
/// computed (they never verify): 256 MiB, 13 times the default's.
const MAX_BLOCKS: usize = 256 * 1024;

/// A job for a hashing thread: runs with that thread's memory.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// The threads and their queue.
struct Pool {
    jobs: mpsc::SyncSender<Job>,
    threads: usize,
    /// Jobs queued or running, for the gauge.
    pending: Arc<AtomicUsize>,
}

impl Pool {
    fn start(threads: usize, queue: usize) -> Self {
        let threads = threads.max(1);
        let (jobs, rx) = mpsc::sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("chat-hash-{n}"))
                .spawn(move || {
                    let mut memory = Vec::new();
                    loop {
                        // The lock is held only while waiting for a job.
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(&mut memory),
                            // The engine is gone.
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        Self {
            jobs,
            threads,
            pending: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Runs `f` on a hashing thread. [`Error::Unavailable`] at once when
    /// the queue is full.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let pending = self.pending.clone();
        pending.fetch_add(1, Ordering::Relaxed);
        let job: Job = Box::new(move |memory| {
            // The caller went away while queued (its client hung up):
            // hashing for nobody would only lengthen the queue.
            if !tx.is_closed() {
                let _ = tx.send(f(memory));
            }
            pending.fetch_sub(1, Ordering::Relaxed);
        });
        if let Err(e) = self.jobs.try_send(job) {
            self.pending.fetch_sub(1, Ordering::Relaxed);
            return Err(match e {
                mpsc::TrySendError::Full(_) => Error::unavailable_msg(
                    "too many logins and sign-ups at once; retry in a moment",
                ),
                mpsc::TrySendError::Disconnected(_) => {
                    Error::unavailable_msg("password hashing has stopped")
                }
            });
        }
        rx.await
            .map_err(|_| Error::unavailable_msg("password hashing has stopped"))
    }
}

/// Argon2id hashing and verification for the engine's accounts.
pub(crate) struct PasswordHashing {
    params: Params,
    /// A hash with the real parameters that no password matches, verified
    /// for unknown usernames so that they take as long as known ones.
    dummy: String,
    pool: Pool,
}

impl PasswordHashing {
    /// OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane.
    pub(crate) fn recommended_params() -> Params {
        Params::new(19 * 1024, 2, 1, None).expect("valid argon2 params")
    }

    /// The cheapest parameters: for tests only.
    pub(crate) fn insecure_fast_params() -> Params {
        Params::new(8, 1, 1, None).expect("valid argon2 params")
    }

    /// Hashing with `params` on `threads` threads (0: one per core) with
    /// at most `queue` requests waiting.
    pub(crate) fn start(params: Params, threads: usize, queue: usize) -> Self {
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        Self {
            dummy: dummy_hash(&params),
            params,
            pool: Pool::start(threads, queue),
        }
    }

    /// Hashing threads.
    pub(crate) fn threads(&self) -> usize {
        self.pool.threads
    }

    /// Hashes queued or running now.
    pub(crate) fn pending(&self) -> usize {
        self.pool.pending.load(Ordering::Relaxed)
    }

    /// The dummy hash (see the field).
    pub(crate) fn dummy(&self) -> &str {
        &self.dummy
    }

    /// A PHC string (`$argon2id$v=19$m=…`) of `password` with a fresh salt.
    pub(crate) async fn hash(&self, password: String) -> Result<String> {
        let params = self.params.clone();
        self.pool
            .run(move |memory| hash_with(memory, &params, password.as_bytes()))
            .await?
    }

    /// Whether `password` matches the PHC string `hash`. A hash that does
    /// not parse never matches.
    pub(crate) async fn verify(&self, password: String, hash: String) -> Result<bool> {
        self.pool
            .run(move |memory| verify_with(memory, password.as_bytes(), &hash))
            .await
    }
}

/// Grows `memory` to `blocks` (once per thread in practice) and lends it.
fn memory_for(memory: &mut Vec<Block>, blocks: usize) -> &mut [Block] {
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    &mut memory[..blocks]
}

fn hash_with(memory: &mut Vec<Block>, params: &Params, password: &[u8]) -> Result<String> {
    use rand::Rng;
    let salt_bytes: [u8; 16] = rand::rng().random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| Error::invalid(e.to_string()))?;
    let mut out = [0u8; 32];
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    argon
        .hash_password_into_with_memory(
            password,
            &salt_bytes,
            &mut out,
            memory_for(memory, params.block_count()),
        )
        .map_err(|e| Error::invalid(format!("cannot hash password: {e}")))?;
    phc(params, salt.as_salt(), &out)
}

fn phc(params: &Params, salt: argon2::password_hash::Salt<'_>, out: &[u8]) -> Result<String> {
    let bad =
        |e: argon2::password_hash::Error| Error::invalid(format!("cannot hash password: {e}"));
    Ok(PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(bad)?,
        salt: Some(salt),
        hash: Some(Output::new(out).map_err(bad)?),
    }
    .to_string())
}

fn verify_with(memory: &mut Vec<Block>, password: &[u8], hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    if params.block_count() > MAX_BLOCKS {
        tracing::warn!("a stored password hash asks for more than 256 MiB; refusing it");
        return false;
    }
    let mut salt_buf = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params.clone());
    if argon
        .hash_password_into_with_memory(
            password,
            salt_bytes,
            &mut out,
            memory_for(memory, params.block_count()),
        )
        .is_err()
    {
        return false;
    }
    // Output's equality is constant-time.
    Output::new(&out).is_ok_and(|computed| computed == expected)
}

/// A hash with `params`, a random salt and a random output: verifying it
/// costs what verifying a real one does, and no password matches it.
fn dummy_hash(params: &Params) -> String {
    use rand::Rng;
    let salt_bytes: [u8; 16] = rand::rng().random();
    let out: [u8; 32] = rand::rng().random();
    let salt = SaltString::encode_b64(&salt_bytes).expect("16 bytes make a valid salt");
    phc(params, salt.as_salt(), &out).expect("valid parameters make a valid PHC string")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let p = PasswordHashing::start(PasswordHashing::insecure_fast_params(), 1, 4);
        let h = p.hash("secret pw".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{h}");
        assert!(p.verify("secret pw".into(), h.clone()).await.unwrap());
        assert!(!p.verify("wrong pw".into(), h).await.unwrap());
        assert!(!p.verify("x".into(), p.dummy().to_owned()).await.unwrap());
        assert!(!p.verify("x".into(), "not a hash".into()).await.unwrap());
    }

    #[tokio::test]
    async fn hashes_made_by_the_argon2_crate_itself_still_verify() {
        // Accounts created before the pool (by PasswordHasher) keep working.
        use argon2::password_hash::PasswordHasher;
        let params = PasswordHashing::insecure_fast_params();
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let salt = SaltString::from_b64("MDAwMDAwMDAwMDAwMDAwMA").unwrap();
        let old = argon
            .hash_password(b"old password", &salt)
            .unwrap()
            .to_string();
        let p = PasswordHashing::start(params, 1, 4);
        assert!(p.verify("old password".into(), old.clone()).await.unwrap());
        assert!(!p.verify("other".into(), old).await.unwrap());
    }

    #[test]
    fn the_dummy_hash_has_the_real_parameters() {
        let real = PasswordHashing::recommended_params();
        let dummy = dummy_hash(&real);
        assert!(
            dummy.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{dummy}"
        );
        let parsed = PasswordHash::new(&dummy).unwrap();
        assert_eq!(
            Params::try_from(&parsed).unwrap().block_count(),
            real.block_count()
        );
    }

    #[tokio::test]
    async fn a_full_queue_answers_unavailable_at_once() {
        let p = PasswordHashing::start(PasswordHashing::insecure_fast_params(), 1, 1);
        // Hold the only thread, fill the one queue slot, then one more.
        let (release, hold) = std::sync::mpsc::channel::<()>();
        p.pool
            .jobs
            .try_send(Box::new(move |_| {
                let _ = hold.recv();
            }))
            .unwrap();
        // Wait until the thread has taken that job (the queue is free again).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while p.pool.jobs.try_send(Box::new(|_| {})).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the thread never took the job"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        // That probe fills the queue now: the next request is refused.
        let err = p.hash("password".into()).await.unwrap_err();
        assert!(matches!(err, Error::Unavailable { .. }), "{err}");
        release.send(()).unwrap();
        // Once the thread is free again (the probe may still be queued for
        // a moment), hashing works.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while let Err(e) = p.hash("password".into()).await {
            assert!(std::time::Instant::now() < deadline, "{e}");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
}
