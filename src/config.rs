//! Settings: the TOML file plus `HOOKGATE_<SECTION>_<KEY>` overrides, turned into
//! typed values in one place.
//!
//! Every problem is collected before failing, and each message names its key, so
//! `hookgate check-config` can report a broken file in one pass. Downstream code
//! never sees a raw string where an address, a duration or a URL belongs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::secret::{SecretString, TokenDigest};

/// The path used when neither `--config` nor `HOOKGATE_CONFIG` names one.
pub const DEFAULT_PATH: &str = "config/hookgate.toml";

const SECTIONS: [&str; 10] = [
    "public", "admin", "database", "redis", "upstream", "auth", "cache", "purge", "log", "shutdown",
];

/// Everything the gateway needs to start, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub public: PublicSettings,
    pub admin: AdminSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub upstream: UpstreamSettings,
    pub auth: AuthSettings,
    pub cache: CacheSettings,
    pub purge: PurgeSettings,
    pub log: LogSettings,
    pub shutdown: ShutdownSettings,
}

#[derive(Debug, Clone)]
pub struct PublicSettings {
    pub listen: SocketAddr,
    pub tls: Option<TlsFiles>,
    pub max_head_bytes: usize,
    pub max_body_bytes: u64,
    pub head_timeout: Duration,
    pub idle_timeout: Duration,
    pub disclosure: Disclosure,
    pub realm: String,
    pub trusted_proxies: Vec<IpNet>,
}

/// How a failed authentication answers (SPEC §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Disclosure {
    /// Wrong credentials look like an unknown trigger (404).
    Hide,
    /// RFC 7235 style: 401 with a Basic challenge.
    Challenge,
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone)]
pub struct AdminSettings {
    pub listen: SocketAddr,
    pub tls: Option<TlsFiles>,
    pub tokens: Vec<AdminToken>,
}

/// One configured admin token: its digest and the actor it stands for.
#[derive(Debug, Clone)]
pub struct AdminToken {
    pub actor_id: Uuid,
    pub name: String,
    pub digest: TokenDigest,
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub max_connections: u32,
}

#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub url: Option<SecretString>,
    /// Prefix of every Redis key and channel, so deployments can share one Redis.
    pub namespace: String,
}

#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    pub url: http::Uri,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub max_failures: u32,
    pub failure_window: Duration,
    pub argon2_concurrency: usize,
    pub argon2_queue_timeout: Duration,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
}

#[derive(Debug, Clone)]
pub struct CacheSettings {
    pub trigger_ttl: Duration,
    pub negative_ttl: Duration,
    pub verified_ttl: Duration,
    pub stale_for: Duration,
    pub max_triggers: u64,
}

#[derive(Debug, Clone)]
pub struct PurgeSettings {
    pub deleted_after_days: u32,
    pub interval: Duration,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// SPEC §6 names `shutdown.grace`; the drain bound is ours.
#[derive(Debug, Clone)]
pub struct ShutdownSettings {
    pub grace: Duration,
    pub drain_timeout: Duration,
}

/// Every problem found in one configuration, each naming its key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  {}", .problems.join("\n  "))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl ConfigError {
    fn one(problem: String) -> Self {
        Self {
            problems: vec![problem],
        }
    }
}

/// Every `section.key` the configuration accepts.
pub fn known_keys() -> std::collections::BTreeSet<String> {
    let defaults = serde_json::to_value(RawSettings::default()).unwrap_or_default();
    let sections = defaults.as_object().into_iter().flatten();
    sections
        .flat_map(|(section, keys)| {
            let keys = keys.as_object().into_iter().flat_map(|k| k.keys());
            keys.map(move |key| format!("{section}.{key}"))
        })
        .collect()
}

impl Settings {
    /// Reads `path` (which may be absent only when it is the default path), applies
    /// the environment, and validates the result.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let env: BTreeMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        let explicit = path
            .map(Path::to_path_buf)
            .or_else(|| env.get("HOOKGATE_CONFIG").map(PathBuf::from));
        let path = explicit
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH));

        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if explicit.is_none() && e.kind() == std::io::ErrorKind::NotFound => {
                String::new()
            }
            Err(e) => {
                return Err(ConfigError::one(format!(
                    "{}: cannot read: {e}",
                    path.display()
                )));
            }
        };
        Self::from_toml(&text, &env)
    }

    /// Builds settings from file text and an environment map (tests use this directly).
    pub fn from_toml(text: &str, env: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| ConfigError::one(format!("config file: {e}")))?;
        let from_env = apply_env(&mut table, env)?;
        check_each_key(&table, &from_env)?;

        let raw: RawSettings = RawSettings::deserialize(toml::Value::Table(table))
            .map_err(|e| ConfigError::one(describe_toml_error(&e)))?;
        let bootstrap = env.get("HOOKGATE_ADMIN_TOKEN").filter(|t| !t.is_empty());
        raw.validate(bootstrap.map(String::as_str))
    }
}

fn describe_toml_error(error: &toml::de::Error) -> String {
    // toml reports the failing key in its message; strip the source excerpt.
    error.message().to_string()
}

/// Reads every key on its own, so that one run names every unknown key and every value
/// of the wrong type, with the environment variable it came from.
fn check_each_key(
    table: &toml::Table,
    from_env: &BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    let mut problems = Vec::new();
    for (section, keys) in table {
        let Some(keys) = keys.as_table() else {
            problems.push(format!("{section}: must be a [{section}] table"));
            continue;
        };
        if !SECTIONS.contains(&section.as_str()) {
            problems.push(format!(
                "[{section}]: unknown section (known: {})",
                SECTIONS.join(", ")
            ));
            continue;
        }
        for (key, value) in keys {
            let mut single = toml::Table::new();
            single.insert(key.clone(), value.clone());
            let mut wrapper = toml::Table::new();
            wrapper.insert(section.clone(), toml::Value::Table(single));
            if let Err(error) = RawSettings::deserialize(toml::Value::Table(wrapper)) {
                let name = format!("{section}.{key}");
                let source = from_env
                    .get(&name)
                    .map(|var| format!(" (set by {var})"))
                    .unwrap_or_default();
                problems.push(format!("{name}: {}{source}", describe_toml_error(&error)));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError { problems })
    }
}

/// Moves `HOOKGATE_<SECTION>_<KEY>`, `DATABASE_URL` and `REDIS_URL` into the table;
/// returns which `section.key` came from which variable.
fn apply_env(
    table: &mut toml::Table,
    env: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut overrides: Vec<(String, String, &String, String)> = Vec::new();
    if let Some(url) = env.get("DATABASE_URL") {
        overrides.push(("database".into(), "url".into(), url, "DATABASE_URL".into()));
    }
    if let Some(url) = env.get("REDIS_URL") {
        overrides.push(("redis".into(), "url".into(), url, "REDIS_URL".into()));
    }
    for (name, value) in env {
        let Some(rest) = name.strip_prefix("HOOKGATE_") else {
            continue;
        };
        let lower = rest.to_ascii_lowercase();
        let Some(section) = SECTIONS
            .iter()
            .find(|s| lower.starts_with(&format!("{s}_")))
        else {
            continue;
        };
        let key = &lower[section.len() + 1..];
        if *section == "admin" && key == "token" {
            continue; // HOOKGATE_ADMIN_TOKEN is the bootstrap token, not a key.
        }
        overrides.push((section.to_string(), key.to_string(), value, name.clone()));
    }

    let mut sources = BTreeMap::new();
    for (section, key, value, variable) in overrides {
        sources.insert(format!("{section}.{key}"), variable);
        let entry = table
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(section_table) = entry else {
            return Err(ConfigError::one(format!("[{section}] must be a table")));
        };
        section_table.insert(key, env_value(value));
    }
    Ok(sources)
}

/// An environment value is TOML when it parses as a number, boolean or array, else text.
fn env_value(value: &str) -> toml::Value {
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"));
    match parsed {
        Some(v @ (toml::Value::Integer(_) | toml::Value::Boolean(_) | toml::Value::Array(_))) => v,
        _ => toml::Value::String(value.to_string()),
    }
}

#[derive(Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawSettings {
    public: RawPublic,
    admin: RawAdmin,
    database: RawDatabase,
    redis: RawRedis,
    upstream: RawUpstream,
    auth: RawAuth,
    cache: RawCache,
    purge: RawPurge,
    log: RawLog,
    shutdown: RawShutdown,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct RawPublic {
    listen: String,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    max_head_bytes: u64,
    max_body_bytes: u64,
    head_timeout_ms: u64,
    idle_timeout_ms: u64,
    disclosure: Disclosure,
    realm: String,
    trusted_proxies: Vec<String>,
}

impl Default for RawPublic {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:8080".into(),
            tls_cert: None,
            tls_key: None,
            max_head_bytes: 16384,
            max_body_bytes: 10_000_000,
            head_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            disclosure: Disclosure::Hide,
            realm: "hookgate".into(),
            trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct RawAdmin {
    listen: String,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tokens: Vec<RawToken>,
}

impl Default for RawAdmin {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9090".into(),
            tls_cert: None,
            tls_key: None,
            tokens: vec![],
        }
    }
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    name: String,
    actor_id: String,
    token_sha256: String,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct RawDatabase {
    url: String,
    max_connections: u32,
}

impl Default for RawDatabase {
    fn default() -> Self {
        Self {
            url: "postgres://postgres@127.0.0.1:5432/hookgate".into(),
            max_connections: 16,
        }
    }
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct RawRedis {
    url: Option<String>,
    namespace: String,
}

impl Default for RawRedis {
    fn default() -> Self {
        Self {
            url: None,
            namespace: "hookgate".into(),
        }
    }
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct RawUpstream {
    url: String,
    connect_timeout_ms: u64,
    response_timeout_ms: u64,
}

impl Default for RawUpstream {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:4000".into(),
            connect_timeout_ms: 5000,
            response_timeout_ms: 60_000,
        }
    }
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct RawAuth {
    max_failures: u32,
    failure_window_s: u64,
    argon2_concurrency: Option<usize>,
    argon2_queue_timeout_ms: u64,
    argon2_memory_kib: u32,
    argon2_iterations: u32,
    argon2_parallelism: u32,
}

impl Default for RawAuth {
    fn default() -> Self {
        Self {
            max_failures: 10,
            failure_window_s: 60,
            argon2_concurrency: None,
            argon2_queue_timeout_ms: 250,
            argon2_memory_kib: 19456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
        }
    }
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct RawCache {
    trigger_ttl_s: u64,
    negative_ttl_s: u64,
    verified_ttl_s: u64,
    stale_for_s: u64,
    max_triggers: u64,
}

impl Default for RawCache {
    fn default() -> Self {
        Self {
            trigger_ttl_s: 60,
            negative_ttl_s: 5,
            verified_ttl_s: 900,
            stale_for_s: 60,
            max_triggers: 1_000_000,
        }
    }
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct RawPurge {
    deleted_after_days: u32,
    interval_s: u64,
}

impl Default for RawPurge {
    fn default() -> Self {
        Self {
            deleted_after_days: 7,
            interval_s: 3600,
        }
    }
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct RawLog {
    format: LogFormat,
    level: String,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct RawShutdown {
    grace_ms: u64,
    drain_timeout_ms: u64,
}

impl Default for RawShutdown {
    fn default() -> Self {
        Self {
            grace_ms: 5000,
            drain_timeout_ms: 30_000,
        }
    }
}

/// Collects problems while raw values are turned into typed ones.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn check(&mut self, ok: bool, key: &str, message: &str) {
        if !ok {
            self.0.push(format!("{key}: {message}"));
        }
    }

    fn addr(&mut self, key: &str, value: &str) -> SocketAddr {
        value.parse().unwrap_or_else(|_| {
            self.0.push(format!(
                "{key}: `{value}` is not a socket address (host:port)"
            ));
            SocketAddr::from(([127, 0, 0, 1], 0))
        })
    }

    fn millis(&mut self, key: &str, value: u64) -> Duration {
        self.check(value > 0, key, "must be greater than 0");
        Duration::from_millis(value)
    }

    fn seconds(&mut self, key: &str, value: u64) -> Duration {
        self.check(value > 0, key, "must be greater than 0");
        Duration::from_secs(value)
    }

    fn tls(
        &mut self,
        section: &str,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
    ) -> Option<TlsFiles> {
        match (cert, key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => {
                self.0.push(format!(
                    "{section}.tls_cert / {section}.tls_key: set both or neither"
                ));
                None
            }
        }
    }
}

impl RawSettings {
    fn validate(self, bootstrap_token: Option<&str>) -> Result<Settings, ConfigError> {
        let mut p = Problems::default();

        let public = validate_public(self.public, &mut p);
        let admin = validate_admin(self.admin, bootstrap_token, &mut p);
        let database = validate_database(self.database, &mut p);
        let redis = validate_redis(self.redis, &mut p);
        let upstream = validate_upstream(self.upstream, &mut p);
        let auth = validate_auth(self.auth, &mut p);
        let cache = CacheSettings {
            trigger_ttl: p.seconds("cache.trigger_ttl_s", self.cache.trigger_ttl_s),
            negative_ttl: p.seconds("cache.negative_ttl_s", self.cache.negative_ttl_s),
            verified_ttl: p.seconds("cache.verified_ttl_s", self.cache.verified_ttl_s),
            stale_for: Duration::from_secs(self.cache.stale_for_s),
            max_triggers: self.cache.max_triggers,
        };
        p.check(
            cache.max_triggers > 0,
            "cache.max_triggers",
            "must be greater than 0",
        );
        p.check(
            self.purge.deleted_after_days <= 36_500,
            "purge.deleted_after_days",
            "must be at most 36500 (100 years)",
        );
        let purge = PurgeSettings {
            deleted_after_days: self.purge.deleted_after_days,
            interval: p.seconds("purge.interval_s", self.purge.interval_s),
        };
        let log = LogSettings {
            format: self.log.format,
            level: self.log.level,
        };
        p.check(
            is_log_filter(&log.level),
            "log.level",
            "must be a level (trace, debug, info, warn, error, off) or target=level pairs \
             separated by commas (e.g. info,hookgate::access=warn)",
        );
        let shutdown = ShutdownSettings {
            grace: Duration::from_millis(self.shutdown.grace_ms),
            drain_timeout: p.millis("shutdown.drain_timeout_ms", self.shutdown.drain_timeout_ms),
        };

        if !p.0.is_empty() {
            return Err(ConfigError { problems: p.0 });
        }
        Ok(Settings {
            public,
            admin,
            database,
            redis,
            upstream,
            auth,
            cache,
            purge,
            log,
            shutdown,
        })
    }
}

fn validate_public(raw: RawPublic, p: &mut Problems) -> PublicSettings {
    p.check(
        (1024..=1_048_576).contains(&raw.max_head_bytes),
        "public.max_head_bytes",
        "must be between 1024 and 1048576",
    );
    p.check(
        raw.max_body_bytes > 0,
        "public.max_body_bytes",
        "must be greater than 0",
    );
    p.check(
        !raw.realm.is_empty()
            && raw.realm.chars().all(|c| c.is_ascii_graphic() || c == ' ')
            && !raw.realm.contains('"')
            && !raw.realm.contains('\\'),
        "public.realm",
        "must be non-empty printable ASCII without quotes or backslashes",
    );
    let trusted_proxies = raw
        .trusted_proxies
        .iter()
        .filter_map(|entry| {
            parse_net(entry).or_else(|| {
                p.0.push(format!(
                    "public.trusted_proxies: `{entry}` is not an IP address or CIDR"
                ));
                None
            })
        })
        .collect();
    PublicSettings {
        listen: p.addr("public.listen", &raw.listen),
        tls: p.tls("public", raw.tls_cert, raw.tls_key),
        max_head_bytes: raw.max_head_bytes as usize,
        max_body_bytes: raw.max_body_bytes,
        head_timeout: p.millis("public.head_timeout_ms", raw.head_timeout_ms),
        idle_timeout: p.millis("public.idle_timeout_ms", raw.idle_timeout_ms),
        disclosure: raw.disclosure,
        realm: raw.realm,
        trusted_proxies,
    }
}

/// A level, or comma-separated `level` / `target=level` directives. A bare word that
/// is not a level (a typo like `infoo`) would silently log nothing, so it is refused.
fn is_log_filter(filter: &str) -> bool {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let is_level = |text: &str| LEVELS.contains(&text.trim().to_ascii_lowercase().as_str());
    let directives_ok = filter
        .split(',')
        .all(|directive| match directive.split_once('=') {
            Some((target, level)) => !target.trim().is_empty() && is_level(level),
            None => is_level(directive),
        });
    directives_ok && tracing_subscriber::EnvFilter::try_new(filter).is_ok()
}

fn parse_net(entry: &str) -> Option<IpNet> {
    entry
        .parse::<IpNet>()
        .ok()
        .or_else(|| entry.parse::<std::net::IpAddr>().ok().map(IpNet::from))
}

fn validate_admin(raw: RawAdmin, bootstrap: Option<&str>, p: &mut Problems) -> AdminSettings {
    let mut tokens = Vec::new();
    for (index, token) in raw.tokens.into_iter().enumerate() {
        let key = format!("admin.tokens[{index}]");
        let actor_id = Uuid::try_parse(&token.actor_id);
        p.check(
            actor_id.is_ok(),
            &format!("{key}.actor_id"),
            "must be a UUID",
        );
        p.check(
            !token.name.is_empty(),
            &format!("{key}.name"),
            "must not be empty",
        );
        let digest = TokenDigest::from_hex(&token.token_sha256);
        p.check(
            digest.is_some(),
            &format!("{key}.token_sha256"),
            "must be 64 hex characters",
        );
        if let (Ok(actor_id), Some(digest)) = (actor_id, digest) {
            tokens.push(AdminToken {
                actor_id,
                name: token.name,
                digest,
            });
        }
    }
    if let Some(token) = bootstrap {
        tokens.push(AdminToken {
            actor_id: Uuid::nil(),
            name: "bootstrap".into(),
            digest: TokenDigest::of(token.as_bytes()),
        });
    }
    AdminSettings {
        listen: p.addr("admin.listen", &raw.listen),
        tls: p.tls("admin", raw.tls_cert, raw.tls_key),
        tokens,
    }
}

fn validate_database(raw: RawDatabase, p: &mut Problems) -> DatabaseSettings {
    let scheme_ok = raw.url.starts_with("postgres://") || raw.url.starts_with("postgresql://");
    p.check(
        scheme_ok,
        "database.url",
        "must start with postgres:// or postgresql://",
    );
    p.check(
        raw.max_connections > 0,
        "database.max_connections",
        "must be greater than 0",
    );
    DatabaseSettings {
        url: SecretString::new(raw.url),
        max_connections: raw.max_connections,
    }
}

fn validate_redis(raw: RawRedis, p: &mut Problems) -> RedisSettings {
    let url = raw.url.filter(|u| !u.is_empty());
    if let Some(url) = &url {
        let ok = url.starts_with("redis://") || url.starts_with("rediss://");
        p.check(ok, "redis.url", "must start with redis://");
    }
    let namespace_ok = !raw.namespace.is_empty()
        && raw
            .namespace
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    p.check(
        namespace_ok,
        "redis.namespace",
        "must be non-empty: letters, digits, - _ . :",
    );
    RedisSettings {
        url: url.map(SecretString::new),
        namespace: raw.namespace,
    }
}

fn validate_upstream(raw: RawUpstream, p: &mut Problems) -> UpstreamSettings {
    let url = match crate::model::parse_upstream_url(&raw.url) {
        Ok(url) => url,
        Err(message) => {
            p.0.push(format!("upstream.url: {message}"));
            http::Uri::from_static("http://127.0.0.1:4000")
        }
    };
    UpstreamSettings {
        url,
        connect_timeout: p.millis("upstream.connect_timeout_ms", raw.connect_timeout_ms),
        response_timeout: p.millis("upstream.response_timeout_ms", raw.response_timeout_ms),
    }
}

fn validate_auth(raw: RawAuth, p: &mut Problems) -> AuthSettings {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let concurrency = raw.argon2_concurrency.unwrap_or((cores / 2).max(1));
    p.check(
        concurrency > 0,
        "auth.argon2_concurrency",
        "must be at least 1",
    );
    p.check(
        raw.max_failures > 0,
        "auth.max_failures",
        "must be at least 1",
    );
    p.check(
        raw.argon2_memory_kib >= 8 * raw.argon2_parallelism.max(1),
        "auth.argon2_memory_kib",
        "must be at least 8 × argon2_parallelism",
    );
    p.check(
        raw.argon2_iterations > 0,
        "auth.argon2_iterations",
        "must be at least 1",
    );
    p.check(
        raw.argon2_parallelism > 0,
        "auth.argon2_parallelism",
        "must be at least 1",
    );
    AuthSettings {
        max_failures: raw.max_failures,
        failure_window: p.seconds("auth.failure_window_s", raw.failure_window_s),
        argon2_concurrency: concurrency,
        argon2_queue_timeout: p.millis("auth.argon2_queue_timeout_ms", raw.argon2_queue_timeout_ms),
        argon2_memory_kib: raw.argon2_memory_kib,
        argon2_iterations: raw.argon2_iterations,
        argon2_parallelism: raw.argon2_parallelism,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn empty_file_gives_spec_defaults() {
        let s = Settings::from_toml("", &env(&[])).expect("defaults are valid");
        assert_eq!(s.public.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(s.admin.listen.to_string(), "127.0.0.1:9090");
        assert_eq!(s.public.max_body_bytes, 10_000_000);
        assert_eq!(s.cache.negative_ttl, Duration::from_secs(5));
        assert_eq!(s.purge.deleted_after_days, 7);
        assert!(s.redis.url.is_none());
    }

    #[test]
    fn environment_overrides_file_values() {
        let file = "[public]\nmax_body_bytes = 5\n";
        let vars = env(&[
            ("HOOKGATE_PUBLIC_MAX_BODY_BYTES", "123"),
            ("HOOKGATE_PURGE_DELETED_AFTER_DAYS", "0"),
            ("HOOKGATE_UPSTREAM_URL", "http://127.0.0.1:5000"),
        ]);
        let s = Settings::from_toml(file, &vars).expect("valid");
        assert_eq!(s.public.max_body_bytes, 123);
        assert_eq!(s.purge.deleted_after_days, 0);
        assert_eq!(s.upstream.url.to_string(), "http://127.0.0.1:5000/");
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key() {
        let err = Settings::from_toml("[public]\nlisten_addr = \"x\"\n", &env(&[]))
            .expect_err("unknown key");
        assert!(err.to_string().contains("listen_addr"), "{err}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let file = "[public]\nlisten = \"nope\"\n[upstream]\nurl = \"ftp://x\"\n";
        let err = Settings::from_toml(file, &env(&[])).expect_err("invalid");
        assert!(
            err.problems.iter().any(|p| p.starts_with("public.listen")),
            "{err}"
        );
        assert!(
            err.problems.iter().any(|p| p.starts_with("upstream.url")),
            "{err}"
        );
    }

    #[test]
    fn wrong_types_and_unknown_keys_are_all_named_in_one_run() {
        let file = concat!(
            "[public]\nmax_body_bytes = \"10MB\"\nlisten_addr = 1\n",
            "[auth]\nmax_failures = \"ten\"\n",
        );
        let vars = env(&[("HOOKGATE_PUBLIC_DISCLOSURE", "hidden")]);
        let err = Settings::from_toml(file, &vars).expect_err("invalid");
        let text = err.to_string();
        for key in [
            "public.max_body_bytes",
            "public.listen_addr",
            "auth.max_failures",
        ] {
            assert!(text.contains(key), "{key} missing from: {text}");
        }
        assert!(text.contains("public.disclosure") && text.contains("HOOKGATE_PUBLIC_DISCLOSURE"));
    }

    #[test]
    fn a_log_level_typo_is_refused() {
        assert!(Settings::from_toml("[log]\nlevel = \"infoo\"\n", &env(&[])).is_err());
        for good in [
            "info",
            "DEBUG",
            "info,hookgate::access=warn",
            "hookgate=debug",
        ] {
            let file = format!("[log]\nlevel = \"{good}\"\n");
            assert!(Settings::from_toml(&file, &env(&[])).is_ok(), "{good}");
        }
    }

    #[test]
    fn bootstrap_token_becomes_the_bootstrap_actor() {
        let s = Settings::from_toml("", &env(&[("HOOKGATE_ADMIN_TOKEN", "t0ken")])).expect("ok");
        assert_eq!(s.admin.tokens.len(), 1);
        assert_eq!(s.admin.tokens[0].name, "bootstrap");
        assert!(s.admin.tokens[0].actor_id.is_nil());
    }
}
