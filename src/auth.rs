//! The Authenticator: a trigger snapshot plus a request's credential headers give a
//! [`Decision`].
//!
//! Cheap checks come first (API-key digests, Basic credentials verified before);
//! only then the failure throttle and, last, argon2id. Successful Basic verifications
//! are remembered under a keyed digest of (method, version, password), never the
//! password, and concurrent first requests with one credential share one argon2 run.

pub mod credential;
pub mod password;
pub mod throttle;

use std::net::IpAddr;
use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use sha2::Sha256;

use crate::config::Settings;
use crate::model::AuthMethodId;
use crate::secret::{Digest32, SecretBytes, random_bytes, sha256};
use crate::snapshot::{BasicVerifier, TriggerSnapshot};
use crate::telemetry::Metrics;
use credential::{BasicCredential, Presented};
use password::{PasswordError, PasswordHasher};
use throttle::Throttle;

/// What authentication decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow(AuthMethodId),
    Deny(DenyReason),
}

/// Why a request was not let through; `as_str` is the log and metric reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// The trigger requires auth but has no active method.
    NoMethods,
    NoCredentials,
    /// Credentials present, none matched.
    Mismatch,
    /// A credential header appeared more than once.
    Ambiguous,
    /// Too many recent failures from this client on this trigger.
    Throttled,
    /// No argon2 slot came free in time.
    Busy,
    /// A stored method is unusable: fail closed.
    Defective,
}

impl DenyReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::NoMethods => "no_methods",
            DenyReason::NoCredentials => "no_credentials",
            DenyReason::Mismatch => "mismatch",
            DenyReason::Ambiguous => "ambiguous",
            DenyReason::Throttled => "throttled",
            DenyReason::Busy => "argon2_busy",
            DenyReason::Defective => "defective_method",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VerifyFailure {
    Mismatch,
    Busy,
}

pub struct Authenticator {
    passwords: PasswordHasher,
    verified: moka::future::Cache<Digest32, ()>,
    /// HMAC-SHA256 keyed with a per-process random key, prepared once and cloned per
    /// use (keying it again on every request showed in the profile).
    verified_mac: Hmac<Sha256>,
    throttle: Throttle,
    metrics: Arc<Metrics>,
}

impl Authenticator {
    pub fn new(
        settings: &Settings,
        passwords: PasswordHasher,
        throttle: Throttle,
        metrics: Arc<Metrics>,
    ) -> Self {
        let verified = moka::future::Cache::builder()
            .max_capacity(1_000_000)
            .time_to_live(settings.cache.verified_ttl)
            .build();
        Self {
            passwords,
            verified,
            verified_mac: keyed_mac(&random_bytes::<32>()),
            throttle,
            metrics,
        }
    }

    pub fn passwords(&self) -> &PasswordHasher {
        &self.passwords
    }

    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    /// Decides from the request head alone.
    pub async fn authenticate(
        &self,
        snapshot: &TriggerSnapshot,
        headers: &HeaderMap,
        client: IpAddr,
    ) -> Decision {
        let decision = self.decide(snapshot, headers, client).await;
        let reason = match decision {
            Decision::Allow(_) => "allowed",
            Decision::Deny(reason) => reason.as_str(),
        };
        self.metrics.auth_outcome(reason);
        decision
    }

    async fn decide(
        &self,
        snapshot: &TriggerSnapshot,
        headers: &HeaderMap,
        client: IpAddr,
    ) -> Decision {
        if snapshot.defect.is_some() {
            return Decision::Deny(DenyReason::Defective);
        }
        if !snapshot.has_methods() {
            return Decision::Deny(DenyReason::NoMethods);
        }

        // An ambiguous request carries no usable credential and fails as a mismatch.
        let (api_key, basic, failure) = match credential::presented(headers) {
            Presented::Nothing => return Decision::Deny(DenyReason::NoCredentials),
            Presented::Ambiguous => (None, None, DenyReason::Ambiguous),
            Presented::Credentials { api_key, basic } => (api_key, basic, DenyReason::Mismatch),
        };

        // Cheap matches never meet the throttle: the right secret always passes.
        if let Some(method) = api_key
            .as_ref()
            .and_then(|key| match_api_key(snapshot, key))
        {
            return Decision::Allow(method);
        }
        let candidates: Vec<&BasicVerifier> = match &basic {
            Some(basic) => snapshot
                .basics
                .iter()
                .filter(|v| v.username == basic.username)
                .collect(),
            None => Vec::new(),
        };
        if let Some(basic) = &basic {
            for candidate in &candidates {
                if self
                    .verified
                    .contains_key(&self.verified_digest(candidate, basic))
                {
                    self.metrics.cache_hit("verified");
                    return Decision::Allow(candidate.method_id);
                }
            }
        }

        // One throttle check for everything that is not a cheap match.
        if self
            .throttle
            .is_throttled(client, snapshot.trigger_id)
            .await
        {
            return Decision::Deny(DenyReason::Throttled);
        }
        let Some(basic) = basic else {
            return self.fail(snapshot, client, failure).await;
        };
        // Boxed for the same reason as the trigger cache's store read: only the slow
        // path should pay for its large future.
        match Box::pin(self.verify_basic(&candidates, &basic)).await {
            Ok(method) => Decision::Allow(method),
            Err(VerifyFailure::Busy) => Decision::Deny(DenyReason::Busy),
            Err(VerifyFailure::Mismatch) => self.fail(snapshot, client, failure).await,
        }
    }

    /// Counts the failure against (client, trigger) and denies.
    async fn fail(
        &self,
        snapshot: &TriggerSnapshot,
        client: IpAddr,
        reason: DenyReason,
    ) -> Decision {
        self.throttle
            .record_failure(client, snapshot.trigger_id)
            .await;
        Decision::Deny(reason)
    }

    /// argon2 against each method with the username, or once against a dummy hash.
    async fn verify_basic(
        &self,
        candidates: &[&BasicVerifier],
        basic: &BasicCredential,
    ) -> Result<AuthMethodId, VerifyFailure> {
        if candidates.is_empty() {
            self.metrics.cache_miss("verified");
            return match self.passwords.verify_dummy(basic.password.expose()).await {
                Err(PasswordError::Busy) => Err(VerifyFailure::Busy),
                _ => Err(VerifyFailure::Mismatch),
            };
        }
        for candidate in candidates {
            self.metrics.cache_miss("verified");
            let key = self.verified_digest(candidate, basic);
            let password = basic.password.clone();
            let phc = candidate.password_hash.clone();
            let verified = self
                .verified
                .try_get_with(key, async move {
                    match self.passwords.verify(password.expose(), phc).await {
                        Ok(true) => Ok(()),
                        Ok(false) | Err(PasswordError::Failed) => Err(VerifyFailure::Mismatch),
                        Err(PasswordError::Busy) => Err(VerifyFailure::Busy),
                    }
                })
                .await;
            match verified {
                Ok(()) => return Ok(candidate.method_id),
                Err(failure) if *failure == VerifyFailure::Busy => return Err(VerifyFailure::Busy),
                Err(_) => {}
            }
        }
        Err(VerifyFailure::Mismatch)
    }

    /// HMAC-SHA256 under a per-process key of (method id, version, password).
    fn verified_digest(&self, verifier: &BasicVerifier, basic: &BasicCredential) -> Digest32 {
        let mut mac = self.verified_mac.clone();
        mac.update(verifier.method_id.0.as_bytes());
        mac.update(&verifier.version.to_be_bytes());
        mac.update(basic.password.expose());
        let bytes: [u8; 32] = mac.finalize().into_bytes().into();
        Digest32::from_bytes(bytes)
    }
}

fn keyed_mac(key: &[u8; 32]) -> Hmac<Sha256> {
    #[allow(clippy::expect_used)] // HMAC takes keys of any length.
    Hmac::<Sha256>::new_from_slice(key).expect("any key length")
}

/// Compares the key's digest with every API-key method in constant time.
fn match_api_key(snapshot: &TriggerSnapshot, key: &SecretBytes) -> Option<AuthMethodId> {
    let digest = sha256(key.expose());
    let mut matched = None;
    for verifier in &snapshot.api_keys {
        if verifier.digest == digest {
            matched = Some(verifier.method_id);
        }
    }
    matched
}
