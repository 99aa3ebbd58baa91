//! argon2id hashing and verification on the blocking pool, at most
//! `auth.argon2_concurrency` at once, with a bounded wait for a slot.

use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

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
        let dummy = hash_blocking(&params, &crate::secret::random_bytes::<16>())
            .map_err(|_| anyhow::anyhow!("cannot compute the dummy argon2 hash"))?;
        Ok(Self {
            params,
            slots: Arc::new(Semaphore::new(settings.argon2_concurrency)),
            queue_timeout: settings.argon2_queue_timeout,
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
        tokio::task::spawn_blocking(move || hash_blocking(&params, password.expose()))
            .await
            .map_err(|_| PasswordError::Failed)?
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
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let matched = verify_blocking(password.expose(), &phc);
            metrics.argon2_verifications.inc();
            metrics
                .argon2_verify_seconds
                .observe(started.elapsed().as_secs_f64());
            drop(slot);
            matched
        })
        .await
        .map_err(|_| PasswordError::Failed)
    }

    /// One verification against the dummy hash; always a mismatch.
    pub async fn verify_dummy(&self, password: &[u8]) -> Result<bool, PasswordError> {
        self.verify(password, self.dummy_hash.clone())
            .await
            .map(|_| false)
    }
}

fn hash_blocking(params: &Params, password: &[u8]) -> Result<String, PasswordError> {
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    argon2
        .hash_password(password)
        .map(|hash| hash.to_string())
        .map_err(|_| PasswordError::Failed)
}

/// Uses the parameters recorded in the PHC string, so older hashes keep verifying.
fn verify_blocking(password: &[u8], phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    Argon2::default().verify_password(password, &parsed).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Params {
        Params::new(64, 1, 1, None).expect("valid params")
    }

    #[test]
    fn a_hash_verifies_its_password_and_nothing_else() {
        let hash = hash_blocking(&cheap(), b"s3cret-pass").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_blocking(b"s3cret-pass", &hash));
        assert!(!verify_blocking(b"s3cret-pass\n", &hash));
        assert!(!verify_blocking(b"", &hash));
    }

    #[test]
    fn hashes_made_with_other_parameters_still_verify() {
        let old = hash_blocking(&Params::new(128, 3, 2, None).expect("valid"), b"pw-123456")
            .expect("hash");
        assert!(verify_blocking(b"pw-123456", &old));
    }

    #[test]
    fn a_malformed_phc_string_is_a_mismatch() {
        assert!(!verify_blocking(b"x", "not a phc string"));
        assert!(!verify_blocking(b"x", ""));
    }
}
