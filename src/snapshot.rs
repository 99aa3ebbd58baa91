//! What the request path knows about one trigger: its settings and the verifiers of
//! its active auth methods, read from the store in one go and cached as a unit.

use std::sync::Arc;

use crate::model::{AuthMethodId, ProjectId, TriggerId};
use crate::secret::Digest32;

/// A trigger and the verifiers of its active methods, as of one read.
#[derive(Debug)]
pub struct TriggerSnapshot {
    pub trigger_id: TriggerId,
    pub project_id: ProjectId,
    pub enabled: bool,
    pub auth_required: bool,
    /// The trigger's own upstream, when it overrides the default.
    pub upstream: Option<http::Uri>,
    pub api_keys: Vec<ApiKeyVerifier>,
    pub basics: Vec<BasicVerifier>,
    /// Set when a stored method could not be understood; such a trigger fails closed.
    pub defect: Option<String>,
}

/// An API-key method: the SHA-256 of its key.
#[derive(Debug)]
pub struct ApiKeyVerifier {
    pub method_id: AuthMethodId,
    pub digest: Digest32,
}

/// A Basic method: its username and argon2id PHC string.
#[derive(Debug)]
pub struct BasicVerifier {
    pub method_id: AuthMethodId,
    pub version: i64,
    pub username: Vec<u8>,
    pub password_hash: Arc<str>,
}

impl TriggerSnapshot {
    /// An open trigger takes requests without credentials (SPEC §2.1 step 2).
    pub fn is_open(&self) -> bool {
        !self.has_methods() && !self.auth_required
    }

    pub fn has_methods(&self) -> bool {
        !self.api_keys.is_empty() || !self.basics.is_empty() || self.defect.is_some()
    }

    pub fn has_basic(&self) -> bool {
        !self.basics.is_empty()
    }
}
