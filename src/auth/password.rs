//! argon2id hashing and verification on workers of their own, at most
//! `auth.argon2_concurrency` at once, with a bounded wait for a slot.
//!
//! The workers are threads that run at the lowest scheduling priority (nice 19): on a
//! busy machine a flood of wrong passwords takes only the time the requests with good
//! credentials leave over, instead of a share equal to theirs. Each worker keeps its
//! argon2 block memory between verifications, so a verification does not allocate
//! (and give back) `argon2_memory_kib` each time.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use argon2::password_hash::PasswordHasher as _;
use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;
use tokio::sync::{Semaphore, oneshot};

use crate::config::AuthSettings;
use crate::telemetry::Metrics;

/// Why a hash or verification did not run.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum PasswordError {
    /// No verification slot came free within `argon2_queue_timeout_ms`.
    #[error("password verification is saturated")]
    Busy,
    #[error("password hashing failed")]
    Failed,
}

/// The bounded argon2id worker.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    slots: Arc<Semaphore>,
    queue_timeout: Duration,
    workers: Workers,
    /// Verified against when no method has the presented username, so that an
    /// unknown username costs what a known one does.
    dummy_hash: Arc<str>,
    metrics: Arc<Metrics>,
}

impl PasswordHasher {
    pub fn new(settings: &AuthSettings, metrics: Arc<Metrics>) -> anyhow::Result<Self> {
        let params = Params::new(
            settings.argon2_memory_kib,
            settings.argon2_iterations,
            settings.argon2_parallelism,
            None,
        )
        .map_err(|e| anyhow::anyhow!("auth.argon2_*: {e}"))?;
        let dummy = hash_password(&params, &crate::secret::random_bytes::<16>())
            .map_err(|_| anyhow::anyhow!("cannot compute the dummy argon2 hash"))?;
        let workers = Workers::start(settings.argon2_concurrency, params.block_count())?;
        Ok(Self {
            params,
            slots: Arc::new(Semaphore::new(settings.argon2_concurrency)),
            queue_timeout: settings.argon2_queue_timeout,
            workers,
            dummy_hash: Arc::from(dummy),
            metrics,
        })
    }

    /// Hashes a new password with the configured parameters (admin path).
    pub async fn hash(&self, password: &[u8]) -> Result<String, PasswordError> {
        let params = self.params.clone();
        let password = crate::secret::SecretBytes::new(password.to_vec());
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| PasswordError::Failed)?;
        self.workers
            .run(move |_| hash_password(&params, password.expose()))
            .await?
    }

    /// Verifies `password` against a PHC string; a malformed PHC string is a mismatch.
    pub async fn verify(&self, password: &[u8], phc: Arc<str>) -> Result<bool, PasswordError> {
        let queued = Instant::now();
        let slot = tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| {
                self.metrics.argon2_rejected.inc();
                PasswordError::Busy
            })?
            .map_err(|_| PasswordError::Failed)?;
        self.metrics
            .argon2_queue_seconds
            .observe(queued.elapsed().as_secs_f64());

        let password = crate::secret::SecretBytes::new(password.to_vec());
        let metrics = self.metrics.clone();
        self.workers
            .run(move |memory| {
                let started = Instant::now();
                let matched = verify_password(password.expose(), &phc, memory);
                metrics.argon2_verifications.inc();
                metrics
                    .argon2_verify_seconds
                    .observe(started.elapsed().as_secs_f64());
                drop(slot);
                matched
            })
            .await
    }

    /// One verification against the dummy hash; always a mismatch.
    pub async fn verify_dummy(&self, password: &[u8]) -> Result<bool, PasswordError> {
        self.verify(password, self.dummy_hash.clone())
            .await
            .map(|_| false)
    }
}

/// One piece of argon2 work, given the worker's block memory.
type Job = Box<dyn FnOnce(&mut BlockMemory) + Send>;

/// The argon2 threads and the queue they take work from. The threads end when the last
/// clone of this is dropped.
#[derive(Clone)]
struct Workers {
    jobs: mpsc::Sender<Job>,
}

impl Workers {
    /// Starts `count` threads, each keeping `blocks` argon2 blocks between jobs.
    fn start(count: usize, blocks: usize) -> anyhow::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..count.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("hookgate-argon2-{index}"))
                .spawn(move || work(&queue, blocks))
                .map_err(|e| anyhow::anyhow!("cannot start an argon2 worker: {e}"))?;
        }
        Ok(Self { jobs })
    }

    /// Runs `job` on a worker and waits for its result.
    async fn run<T, F>(&self, job: F) -> Result<T, PasswordError>
    where
        T: Send + 'static,
        F: FnOnce(&mut BlockMemory) -> T + Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let _ = done.send(job(memory));
        });
        self.jobs.send(job).map_err(|_| PasswordError::Failed)?;
        result.await.map_err(|_| PasswordError::Failed)
    }
}

/// A worker thread: lowest priority, then jobs until the queue closes.
///
/// A job that panics loses only its own answer (its caller sees the result channel
/// close, which is [`PasswordError::Failed`]); the worker goes on with the next.
fn work(queue: &Mutex<mpsc::Receiver<Job>>, blocks: usize) {
    lower_priority();
    let mut memory = BlockMemory::new(blocks);
    loop {
        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = job else {
            return; // every sender is gone: the hasher was dropped
        };
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut memory)));
    }
}

/// Nice 19 for the calling thread (Linux applies it to the thread alone).
fn lower_priority() {
    let thread = rustix::thread::gettid();
    if let Err(error) = rustix::process::setpriority_process(Some(thread), 19) {
        tracing::debug!(error = %error, "cannot lower the argon2 worker's priority");
    }
}

/// A worker's argon2 blocks, sized for the configured parameters and reused.
struct BlockMemory {
    blocks: Vec<Block>,
    /// What stays allocated between jobs: the configured parameters' block count. An
    /// older hash with a larger memory cost borrows more for its one job.
    kept: usize,
}

impl BlockMemory {
    fn new(kept: usize) -> Self {
        Self {
            blocks: Vec::new(),
            kept,
        }
    }

    /// At least `count` blocks, their contents left from the last job (argon2 writes
    /// every block before it reads it).
    fn take(&mut self, count: usize) -> &mut [Block] {
        if self.blocks.len() < count {
            self.blocks.resize(count, Block::default());
        }
        &mut self.blocks[..count]
    }

    /// Gives back what a large older hash borrowed.
    fn trim(&mut self) {
        if self.blocks.len() > self.kept {
            self.blocks.truncate(self.kept);
            self.blocks.shrink_to_fit();
        }
    }
}

fn hash_password(params: &Params, password: &[u8]) -> Result<String, PasswordError> {
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    argon2
        .hash_password(password)
        .map(|hash| hash.to_string())
        .map_err(|_| PasswordError::Failed)
}

/// Uses the algorithm, version and parameters recorded in the PHC string, so older
/// hashes keep verifying; compares the outputs in constant time.
fn verify_password(password: &[u8], phc: &str, memory: &mut BlockMemory) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(argon2), Some(salt), Some(expected)) = (recorded_hasher(&hash), hash.salt, hash.hash)
    else {
        return false;
    };
    let mut output = [0u8; 64];
    let Some(output) = output.get_mut(..expected.len()) else {
        return false;
    };

    let blocks = memory.take(argon2.params().block_count());
    let computed = argon2
        .hash_password_into_with_memory(password, &salt, output, blocks)
        .is_ok();
    memory.trim();
    computed && bool::from(output.ct_eq(expected.as_bytes()))
}

/// The argon2 variant, version and parameters a PHC string records.
fn recorded_hasher(hash: &PasswordHash) -> Option<Argon2<'static>> {
    let algorithm = Algorithm::try_from(hash.algorithm.as_str()).ok()?;
    let version = match hash.version {
        None => Version::default(),
        Some(number) => Version::try_from(number).ok()?,
    };
    let params = Params::try_from(hash).ok()?;
    Some(Argon2::new(algorithm, version, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Params {
        Params::new(64, 1, 1, None).expect("valid params")
    }

    #[test]
    fn a_hash_verifies_its_password_and_nothing_else() {
        let hash = hash_password(&cheap(), b"s3cret-pass").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        let mut memory = BlockMemory::new(cheap().block_count());
        assert!(verify_password(b"s3cret-pass", &hash, &mut memory));
        assert!(!verify_password(b"s3cret-pass\n", &hash, &mut memory));
        assert!(!verify_password(b"", &hash, &mut memory));
        // The same memory, reused, still gives the right answer.
        assert!(verify_password(b"s3cret-pass", &hash, &mut memory));
    }

    #[test]
    fn hashes_made_with_other_parameters_still_verify() {
        let old = hash_password(&Params::new(128, 3, 2, None).expect("valid"), b"pw-123456")
            .expect("hash");
        let mut memory = BlockMemory::new(cheap().block_count());
        assert!(verify_password(b"pw-123456", &old, &mut memory));
        // The larger older hash borrowed memory for its one verification only.
        assert_eq!(memory.blocks.len(), cheap().block_count());
        // A hash the `argon2` crate's own verifier accepts is accepted here too.
        let parsed = PasswordHash::new(&old).expect("phc");
        use argon2::password_hash::PasswordVerifier as _;
        assert!(
            Argon2::default()
                .verify_password(b"pw-123456", &parsed)
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_worker_survives_a_job_that_panics() {
        let workers = Workers::start(1, cheap().block_count()).expect("workers");
        let failed: Result<u32, _> = workers.run(|_| panic!("a job that fails")).await;
        assert_eq!(failed, Err(PasswordError::Failed));
        assert_eq!(workers.run(|_| 7).await, Ok(7));
    }

    #[test]
    fn a_malformed_phc_string_is_a_mismatch() {
        let mut memory = BlockMemory::new(cheap().block_count());
        assert!(!verify_password(b"x", "not a phc string", &mut memory));
        assert!(!verify_password(b"x", "", &mut memory));
        let argon2i = "$argon2i$v=19$m=64,t=1,p=1$c29tZXNhbHQ$Zm9v";
        assert!(!verify_password(b"x", argon2i, &mut memory));
    }
}
