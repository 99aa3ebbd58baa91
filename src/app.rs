//! Assembles a running gateway from settings: store, caches, Redis link, both
//! listeners and background tasks; and takes it down in order.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::admin::{self, AdminState};
use crate::auth::Authenticator;
use crate::auth::password::PasswordHasher;
use crate::auth::throttle::Throttle;
use crate::cache::TriggerCache;
use crate::cluster::Cluster;
use crate::config::Settings;
use crate::health::Health;
use crate::listener::{self, ConnLimits};
use crate::proxy::Proxy;
use crate::proxy::forward::Forwarder;
use crate::purge::PurgeTimer;
use crate::store::Store;
use crate::telemetry::Metrics;
use crate::tls::TlsReloader;

/// A gateway that is serving.
pub struct Gateway {
    pub public_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    health: Arc<Health>,
    stop_tx: watch::Sender<bool>,
    tasks: JoinSet<()>,
    grace: Duration,
}

/// Start-up choices that are not configuration.
#[derive(Debug, Clone, Copy)]
pub struct StartOptions {
    /// Apply pending migrations before serving (`serve --no-migrate` turns it off).
    pub migrate: bool,
}

/// Starts everything; returns once both ports are bound.
pub async fn start(settings: Settings, options: StartOptions) -> anyhow::Result<Gateway> {
    let metrics = Arc::new(Metrics::new());
    let store = Store::connect(&settings.database)?;
    if options.migrate {
        store
            .migrate()
            .await
            .map_err(|e| anyhow::anyhow!("applying migrations: {e}"))?;
        tracing::info!("database migrations are current");
    }

    let cluster = Arc::new(Cluster::new(&settings.redis, metrics.clone())?);
    let cache = Arc::new(TriggerCache::new(
        &settings.cache,
        store.clone(),
        metrics.clone(),
    ));
    let passwords = PasswordHasher::new(&settings.auth, metrics.clone())?;
    let throttle = Throttle::new(
        &settings.auth,
        &settings.redis.namespace,
        cluster.connection(),
    );
    let auth = Arc::new(Authenticator::new(
        &settings,
        passwords.clone(),
        throttle,
        metrics.clone(),
    ));
    let health = Arc::new(Health::new(store.clone(), cache.clone(), cluster.clone()));
    let forwarder = Forwarder::new(&settings.upstream, metrics.clone());
    let proxy = Arc::new(Proxy::new(
        cache.clone(),
        auth,
        forwarder,
        health.clone(),
        metrics.clone(),
        settings.public.clone(),
    ));
    let admin_router = admin::router(Arc::new(AdminState {
        store: store.clone(),
        cache: cache.clone(),
        cluster: cluster.clone(),
        passwords,
        health: health.clone(),
        metrics: metrics.clone(),
        tokens: settings.admin.tokens.clone(),
        deleted_after_days: settings.purge.deleted_after_days,
    }));

    let public_tls = load_tls(settings.public.tls.as_ref(), &[b"h2", b"http/1.1"])?;
    let admin_tls = load_tls(settings.admin.tls.as_ref(), &[b"http/1.1"])?;
    let public_listener = bind("public.listen", settings.public.listen).await?;
    let admin_listener = bind("admin.listen", settings.admin.listen).await?;
    let public_addr = public_listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let limits = ConnLimits {
        max_head_bytes: settings.public.max_head_bytes,
        head_timeout: settings.public.head_timeout,
        idle_timeout: settings.public.idle_timeout,
    };
    let drain = settings.shutdown.drain_timeout;
    let handler = move |request, info| {
        let proxy = proxy.clone();
        // Boxed once here: the request future is large, and hyper moves it several
        // times; a profile showed those copies as a third of the per-request work.
        Box::pin(async move { proxy.handle(request, info).await })
    };
    tasks.spawn(listener::serve(
        "public",
        public_listener,
        public_tls.clone(),
        limits,
        handler,
        stop_rx.clone(),
        drain,
    ));
    let admin_handler = move |request: http::Request<hyper::body::Incoming>, _| {
        let router = admin_router.clone();
        async move {
            use tower::ServiceExt as _;
            match router.oneshot(request.map(axum::body::Body::new)).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        }
    };
    tasks.spawn(listener::serve(
        "admin",
        admin_listener,
        admin_tls.clone(),
        limits,
        admin_handler,
        stop_rx.clone(),
        drain,
    ));

    tasks.spawn(
        cluster
            .clone()
            .run_subscriber(cache.clone(), stop_rx.clone()),
    );
    let timer = PurgeTimer {
        store,
        cache,
        cluster: cluster.clone(),
        metrics,
        interval: settings.purge.interval,
    };
    tasks.spawn(timer.run(stop_rx.clone()));
    let reloaders: Vec<_> = public_tls.into_iter().chain(admin_tls).collect();
    if !reloaders.is_empty() {
        tokio::spawn(crate::shutdown::reload_on_hangup(reloaders));
    }

    tracing::info!(
        public.addr = %public_addr,
        admin.addr = %admin_addr,
        public.tls = settings.public.tls.is_some(),
        admin.tls = settings.admin.tls.is_some(),
        redis = cluster.is_configured(),
        upstream = %settings.upstream.url,
        "hookgate listening"
    );
    Ok(Gateway {
        public_addr,
        admin_addr,
        health,
        stop_tx,
        tasks,
        grace: settings.shutdown.grace,
    })
}

impl Gateway {
    /// Drains: `/readyz` turns 503 now, accepting stops after the grace period,
    /// in-flight requests finish within the drain deadline.
    pub async fn shutdown(mut self) {
        self.health.start_draining();
        tracing::info!(grace_ms = self.grace.as_millis() as u64, "draining");
        tokio::time::sleep(self.grace).await;
        let _ = self.stop_tx.send(true);
        while self.tasks.join_next().await.is_some() {}
        tracing::info!("stopped");
    }
}

fn load_tls(
    files: Option<&crate::config::TlsFiles>,
    alpn: &[&[u8]],
) -> anyhow::Result<Option<Arc<TlsReloader>>> {
    files
        .map(|files| TlsReloader::load(files, alpn).map(Arc::new))
        .transpose()
}

async fn bind(key: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("{key} {addr}: cannot listen: {e}"))
}
