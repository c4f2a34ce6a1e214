//! The per-worker reactor: accepts connections while a request thread is free, reads request heads
//! asynchronously (idle and slow clients never hold a thread), and runs each request either inline
//! on the reactor thread or on a pool thread. Never calls Python itself.
use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use tokio::sync::{oneshot, watch, Semaphore};
use tokio::time::Instant;

use super::acceptor::Acceptor;
use super::body::BodyReader;
use super::buffers::recycle;
use super::conn::{ConnIo, Stream};
use super::head_read::{read_head, HeadRead};
use super::outbox::Outbox;
use super::prefetch::read_body_ahead;
use super::request::{HeadRules, ProxyPolicy, RequestHead, Version};
use super::response::{reason, write_error};
use super::{Exchange, ExchangeConfig, Finished, Handler, Local, Peer, TrustedPeers};
use crate::sockets::Listener;

/// How the reactor serves; fixed for the worker's life.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Requests that may run at once (Python threads).
    pub threads: usize,
    /// Idle time allowed between requests on a connection; None closes after each response.
    pub keepalive: Option<Duration>,
    /// Time allowed to receive a whole request head once its first byte arrived.
    pub head_timeout: Duration,
    pub worker_connections: usize,
    pub rules: HeadRules,
    /// PROXY protocol: None when off, else the peers whose preambles are believed
    /// (proxy_allow_ips); a preamble from any other peer is refused with 403.
    pub proxy_allow: Option<TrustedPeers>,
    /// Stop accepting after this many requests (0 = never), so the master starts a fresh worker.
    pub max_requests: u64,
    pub exchange: ExchangeConfig,
    /// Requests started so far, counted here and read by the worker (max_requests, idleness).
    pub started: Arc<AtomicU64>,
    /// Told `true` when a connection is accepted and `false` when it closes (the worker's
    /// metrics); None costs nothing.
    pub on_connection: Option<fn(bool)>,
}

/// Where requests run.
pub enum Runner {
    /// On the reactor thread itself: no hand-off, one request at a time.
    Inline(Arc<dyn Handler>),
    /// On pool threads fed through this channel.
    Pool(mpsc::Sender<PoolJob>),
}

pub struct PoolJob {
    pub exchange: Exchange,
    pub reply: oneshot::Sender<Finished>,
}

/// Body of each pool thread: runs jobs until the reactor drops the channel.
pub fn pool_thread_loop(handler: &dyn Handler, jobs: &Mutex<mpsc::Receiver<PoolJob>>) {
    loop {
        let job = match jobs.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let _ = job.reply.send(handler.handle(job.exchange));
    }
}

/// What the worker is told to do, through the `shutdown` channel of `serve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    Serve,
    /// The whole server stops: also serve what the kernel already queued on the listeners
    /// (gunicorn issue #3397), since nobody else will.
    Drain,
    /// Only this worker goes (reload, fewer workers): the queue is left to the others.
    Retire,
}

/// Why `serve` returned.
#[derive(Debug, PartialEq, Eq)]
pub enum ServeEnd {
    Shutdown,
    MaxRequests,
}

struct Shared {
    config: ServeConfig,
    runner: Runner,
    threads: Semaphore,
    connections: Arc<Semaphore>,
    /// Stopping while other workers go on (max_requests, retirement): the listen queue is theirs.
    leave_queue: AtomicBool,
    /// What `stop_tx` says, readable by every request without taking the channel's lock.
    stopping: AtomicBool,
    stop_tx: watch::Sender<bool>,
    outbox: Arc<Outbox>,
}

/// Serves until `shutdown` says stop (or max_requests is reached), then lets in-flight requests
/// finish and returns once every connection is closed.
pub async fn serve(
    listeners: Vec<Listener>,
    runner: Runner,
    config: ServeConfig,
    mut shutdown: watch::Receiver<Shutdown>,
) -> io::Result<ServeEnd> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        threads: Semaphore::new(config.threads),
        connections: Arc::new(Semaphore::new(config.worker_connections)),
        leave_queue: AtomicBool::new(false),
        stopping: AtomicBool::new(false),
        config,
        runner,
        stop_tx,
        outbox: Arc::default(),
    });
    let mut acceptors = Vec::new();
    for listener in listeners {
        // A connection that closes after one response has no use for the reactor when its request
        // is already there; a keep-alive one will need it anyway.
        let acceptor = Acceptor::new(listener, shared.config.keepalive.is_none())?;
        acceptors.push(tokio::spawn(accept_loop(
            acceptor,
            shared.clone(),
            stop_rx.clone(),
        )));
    }
    let flusher = tokio::spawn(shared.outbox.clone().run_flusher());
    let mut stopped = stop_rx.clone();
    tokio::select! {
        how = shutdown.wait_for(|how| *how != Shutdown::Serve) => {
            if how.map(|how| *how == Shutdown::Retire).unwrap_or(false) {
                shared.leave_queue.store(true, Ordering::Relaxed);
            }
        }
        _ = stopped.wait_for(|stop| *stop) => {}
    }
    tracing::debug!("Worker draining (pid: {})", std::process::id());
    stop(&shared);
    // The accept loops finish their sweep of the listen queue before the drain starts counting.
    for acceptor in acceptors {
        let _ = acceptor.await;
    }
    let all = u32::try_from(shared.config.worker_connections).unwrap_or(u32::MAX);
    let _drained = shared.connections.acquire_many(all).await;
    flusher.abort();
    shared.outbox.flush();
    let limit = shared.config.max_requests;
    Ok(
        if limit > 0 && shared.config.started.load(Ordering::Relaxed) >= limit {
            ServeEnd::MaxRequests
        } else {
            ServeEnd::Shutdown
        },
    )
}

async fn accept_loop(acceptor: Acceptor, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        // Take new connections only while a request thread is free, so a busy worker leaves them
        // in the kernel queue for an idle one (gunicorn issue #3433).
        let ready = async {
            drop(shared.threads.acquire().await);
            let slot = shared.connections.clone().acquire_owned().await;
            let accepted = acceptor.accept().await;
            (slot, accepted)
        };
        // Stop first: unbiased, select! picks a ready branch at random, and a worker past
        // max_requests whose next client is already queued would take it half the time.
        let next = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => None,
            pair = ready => Some(pair),
        };
        let Some((slot, accepted)) = next else {
            if !shared.leave_queue.load(Ordering::Relaxed) {
                sweep_accept_queue(&acceptor, &shared).await;
            }
            return;
        };
        let Ok(slot) = slot else { return };
        match accepted {
            Ok((stream, peer, local)) => {
                let shared = shared.clone();
                tokio::spawn(async move {
                    serve_counted(stream, peer, local, &shared).await;
                    drop(slot);
                });
                // One connection per turn: its first request takes a thread before this loop
                // looks again, so a worker never holds more new work than it can start (#3433).
                tokio::task::yield_now().await;
            }
            Err(e) => accept_error(e).await,
        }
    }
}

/// Requests served back to back on one connection before others get their turn.
const FAIR_SHARE: u32 = 8;
const SWEEP_TIME: Duration = Duration::from_millis(50);
const SWEEP_MAX: usize = 128;

/// On stop, serves the connections the kernel already completed in the listen queue instead of
/// leaving them to be reset when the last listener closes (gunicorn issue #3397).
async fn sweep_accept_queue(acceptor: &Acceptor, shared: &Arc<Shared>) {
    // Bounded, so a worker under steady load still gets to stop: connections that arrive after
    // this are left to the workers that keep running (or, at full stop, to the closing listener).
    let until = Instant::now() + SWEEP_TIME;
    for _ in 0..SWEEP_MAX {
        let Ok(slot) = shared.connections.clone().try_acquire_owned() else {
            return;
        };
        let accepted = tokio::time::timeout_at(until, acceptor.accept()).await;
        let Ok(Ok((stream, peer, local))) = accepted else {
            return;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            serve_counted(stream, peer, local, &shared).await;
            drop(slot);
        });
    }
}

/// EMFILE and friends would spin the loop; back off briefly and let connections close.
async fn accept_error(error: io::Error) {
    tracing::warn!("accept failed: {error}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

async fn serve_counted(stream: Stream, peer: Peer, local: Local, shared: &Shared) {
    let hook = shared.config.on_connection;
    if let Some(hook) = hook {
        hook(true);
    }
    serve_connection(stream, peer, local, shared).await;
    if let Some(hook) = hook {
        hook(false);
    }
}

/// What a PROXY preamble opening a connection from `peer` means.
fn proxy_policy(config: &ServeConfig, peer: &Peer) -> ProxyPolicy {
    match &config.proxy_allow {
        None => ProxyPolicy::Off,
        Some(allowed) if allowed.trusts(peer) => ProxyPolicy::Accept,
        Some(_) => ProxyPolicy::Refuse,
    }
}

async fn serve_connection(stream: Stream, peer: Peer, local: Local, shared: &Shared) {
    let config = &shared.config;
    let stream = Arc::new(stream);
    let mut conn = ConnIo::new(stream, config.exchange.io_timeout, shared.outbox.clone());
    let mut proxy = proxy_policy(config, &peer);
    let mut first = true;
    let mut back_to_back: u32 = 0;
    // One timer for the connection's life, moved forward for each wait: re-arming a registered
    // timer to a later deadline does not touch the timer wheel.
    let mut timer = std::pin::pin!(tokio::time::sleep_until(
        Instant::now() + config.head_timeout
    ));
    // One head for the connection's life, parsed into again for each request: its strings keep
    // their memory, and only the box moves between reactor, handler and access log.
    let mut head = Box::<RequestHead>::default();
    let mut stopping = shared.stop_tx.subscribe();
    loop {
        let reading = (first, proxy);
        match read_head(
            &mut conn,
            &mut head,
            config,
            reading,
            timer.as_mut(),
            &mut stopping,
        )
        .await
        {
            HeadRead::Head => {}
            HeadRead::Closed => return,
            HeadRead::TimedOut => return reject(&conn, &peer, 408, "request head timed out"),
            HeadRead::Invalid(error) => {
                return reject(&conn, &peer, error.status(), &error.to_string())
            }
        };
        let limit = config.exchange.limit_request_body;
        let mut body = match BodyReader::new(conn, &head.framing, head.expect_continue, limit) {
            Ok(body) => body,
            Err((conn, too_large)) => return reject(&conn, &peer, 413, &too_large.to_string()),
        };
        if let Err(no) = read_body_ahead(&mut body, config.exchange.io_timeout).await {
            return reject(body.conn(), &peer, no.status, &no.detail);
        }
        // An inline request runs within this poll, so no other can hold the thread meanwhile.
        let permit = match shared.runner {
            Runner::Inline(_) => None,
            Runner::Pool(_) => match shared.threads.acquire().await {
                Ok(permit) => Some(permit),
                Err(_) => return,
            },
        };
        let last = is_last_request(shared)
            || shared.stopping.load(Ordering::Relaxed)
            || config.keepalive.is_none();
        let exchange = Exchange {
            head,
            body,
            peer: peer.clone(),
            local: local.clone(),
            config: config.exchange,
            last,
        };
        let finished = match &shared.runner {
            Runner::Inline(handler) => handler.handle(exchange),
            Runner::Pool(jobs) => match run_on_pool(jobs, exchange).await {
                Some(finished) => finished,
                None => return,
            },
        };
        drop(permit);
        conn = finished.conn;
        head = finished.report.head;
        let reused = !last && finished.keep_alive;
        if !finished.held_output.is_empty() {
            // A pipelined request is answered after this response anyway, and a closing
            // connection must have it out before the close.
            if reused && conn.unread().is_empty() {
                conn.hold(finished.held_output);
            } else {
                let sent = conn.write_all(&mut [IoSlice::new(&finished.held_output)]);
                recycle(finished.held_output);
                if sent.is_err() {
                    return;
                }
            }
        }
        if !reused {
            return conn.close();
        }
        (first, proxy) = (false, ProxyPolicy::Off);
        // A client that always has its next request ready (pipelining) would otherwise keep the
        // reactor, and inline the only thread, to itself; the others make us wait anyway.
        back_to_back = match conn.unread().is_empty() {
            true => 0,
            false => back_to_back + 1,
        };
        if back_to_back == FAIR_SHARE {
            back_to_back = 0;
            tokio::task::yield_now().await;
        }
    }
}

/// Tells the accept loops and every connection that the worker is winding down.
fn stop(shared: &Shared) {
    shared.stopping.store(true, Ordering::Relaxed);
    let _ = shared.stop_tx.send(true);
}

/// Counts a request about to run; true when it is this worker's last under max_requests, in which
/// case the worker winds down once it is answered.
fn is_last_request(shared: &Shared) -> bool {
    // Only this (the reactor's) thread counts, so a plain store loses no count and spares the
    // locked read-modify-write.
    let served = shared.config.started.load(Ordering::Relaxed) + 1;
    shared.config.started.store(served, Ordering::Relaxed);
    let limit = shared.config.max_requests;
    if limit > 0 && served >= limit {
        shared.leave_queue.store(true, Ordering::Relaxed);
        stop(shared);
        return true;
    }
    false
}

async fn run_on_pool(jobs: &mpsc::Sender<PoolJob>, exchange: Exchange) -> Option<Finished> {
    let (reply, result) = oneshot::channel();
    jobs.send(PoolJob { exchange, reply }).ok()?;
    result.await.ok()
}

fn reject(conn: &ConnIo, peer: &Peer, status: u16, detail: &str) {
    tracing::info!(
        status,
        "invalid request from {}: {detail}",
        describe_peer(peer)
    );
    let _ = write_error(&conn.sender(), Version::Http11, status, reason(status));
    conn.shutdown_write();
}

fn describe_peer(peer: &Peer) -> String {
    match peer {
        Peer::Tcp(addr) => addr.to_string(),
        Peer::Unix => "unix socket".to_string(),
    }
}
