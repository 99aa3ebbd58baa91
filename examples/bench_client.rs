//! The load benchmark's own client (`make bench`), for what wrk cannot do:
//!
//! - `stampede URL CLIENTS [HEADER VALUE]`: opens CLIENTS connections, then lets every
//!   one send the same GET at the same instant, and reports the slowest answer
//!   measured from that instant.
//! - `warm BASE IDS_FILE CONCURRENCY DEADLINE_S`: requests `BASE/i/{id}` once for each
//!   id in the file (one per line) over CONCURRENCY keep-alive connections, stopping at
//!   the deadline; used to fill hookgate's trigger cache before reading its memory.
//!
//! Every request goes to the address in the URL, which the harness keeps on loopback;
//! each run is bounded in count and in time. Output is one `key=value` line.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Barrier;

/// No single request of this client waits longer than this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("stampede") if args.len() == 3 || args.len() == 5 => {
            let clients: usize = args[2].parse().context("CLIENTS")?;
            let header = args.get(3).cloned().zip(args.get(4).cloned());
            stampede(&args[1], clients.clamp(1, 1024), header).await
        }
        Some("warm") if args.len() == 5 => {
            let concurrency: usize = args[3].parse().context("CONCURRENCY")?;
            let deadline: u64 = args[4].parse().context("DEADLINE_S")?;
            warm(
                &args[1],
                &args[2],
                concurrency.clamp(1, 256),
                Duration::from_secs(deadline.min(3600)),
            )
            .await
        }
        _ => bail!(
            "usage: bench_client stampede URL CLIENTS [HEADER VALUE]\n       \
             bench_client warm BASE IDS_FILE CONCURRENCY DEADLINE_S"
        ),
    }
}

/// One keep-alive HTTP/1.1 connection to the URL's authority.
async fn connect(uri: &Uri) -> anyhow::Result<SendRequest<Empty<Bytes>>> {
    let authority = uri.authority().context("the URL needs host:port")?;
    let port = authority.port_u16().unwrap_or(80);
    let stream = TcpStream::connect((authority.host(), port))
        .await
        .with_context(|| format!("connecting to {authority}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

fn get(uri: &Uri, header: Option<&(String, String)>) -> anyhow::Result<Request<Empty<Bytes>>> {
    let authority = uri.authority().context("the URL needs host:port")?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut builder = Request::get(path).header(http::header::HOST, authority.as_str());
    if let Some((name, value)) = header {
        builder = builder.header(name.as_str(), value.as_str());
    }
    Ok(builder.body(Empty::new())?)
}

/// Sends one request and reads the whole answer; the status, or 0 on any failure.
async fn exchange(sender: &mut SendRequest<Empty<Bytes>>, request: Request<Empty<Bytes>>) -> u16 {
    let answered = tokio::time::timeout(REQUEST_TIMEOUT, async {
        sender.ready().await.ok()?;
        let response = sender.send_request(request).await.ok()?;
        let status = response.status().as_u16();
        response.into_body().collect().await.ok()?;
        Some(status)
    })
    .await;
    answered.ok().flatten().unwrap_or(0)
}

async fn stampede(
    url: &str,
    clients: usize,
    header: Option<(String, String)>,
) -> anyhow::Result<()> {
    let uri: Uri = url.parse().context("URL")?;
    let mut senders = Vec::with_capacity(clients);
    for _ in 0..clients {
        senders.push(connect(&uri).await?);
    }
    let barrier = Arc::new(Barrier::new(clients + 1));
    let mut tasks = Vec::with_capacity(clients);
    for mut sender in senders {
        let request = get(&uri, header.as_ref())?;
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let status = exchange(&mut sender, request).await;
            (status, Instant::now())
        }));
    }
    // Every task is parked at the barrier; this is the instant they all send.
    let start = Instant::now();
    barrier.wait().await;

    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut times = Vec::with_capacity(clients);
    for task in tasks {
        let (status, finished) = task.await?;
        *statuses.entry(status).or_default() += 1;
        times.push(finished.saturating_duration_since(start));
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "clients={clients} statuses={} fastest_ms={:.2} p50_ms={:.2} slowest_ms={:.2}",
        format_statuses(&statuses),
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1]),
    );
    Ok(())
}

async fn warm(
    base: &str,
    ids_file: &str,
    concurrency: usize,
    deadline: Duration,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(ids_file).with_context(|| ids_file.to_string())?;
    let ids: Arc<Vec<String>> = Arc::new(
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
    );
    let base = base.trim_end_matches('/').to_string();
    let base_uri: Uri = base.parse().context("BASE")?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let stop_at = started + deadline;

    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (ids, next, base) = (ids.clone(), next.clone(), base.clone());
        let mut sender = connect(&base_uri).await?;
        workers.push(tokio::spawn(async move {
            let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
            while Instant::now() < stop_at {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(id) = ids.get(i) else { break };
                let Ok(uri) = format!("{base}/i/{id}").parse::<Uri>() else {
                    *statuses.entry(0).or_default() += 1;
                    continue;
                };
                let Ok(request) = get(&uri, None) else { break };
                let status = exchange(&mut sender, request).await;
                *statuses.entry(status).or_default() += 1;
                if status == 0 {
                    break; // the connection is gone; the others carry on
                }
            }
            statuses
        }));
    }
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for worker in workers {
        for (status, count) in worker.await? {
            *statuses.entry(status).or_default() += count;
        }
    }
    let done: usize = statuses.values().sum();
    println!(
        "requests={done} of={} statuses={} elapsed_s={:.2}",
        ids.len(),
        format_statuses(&statuses),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn format_statuses(statuses: &BTreeMap<u16, usize>) -> String {
    statuses
        .iter()
        .map(|(status, count)| format!("{status}:{count}"))
        .collect::<Vec<_>>()
        .join(",")
}
