//! The HTTP/1.1 server under the API: a listener loop over hyper's
//! connection builder, because `axum::serve` has no header-read timeout, no
//! connection cap and a graceful shutdown that waits for every client, so a
//! few hundred half-sent requests could hold the process open forever.
//!
//! Every connection is in one of four phases, and each phase is bounded:
//!
//! | phase | from | until | bound |
//! |---|---|---|---|
//! | idle | accept, or the end of the last response | the first byte of a request | [`HttpLimits::idle_timeout`] |
//! | headers | that byte | the request's head is complete | [`HttpLimits::header_timeout`] |
//! | handling | the head | the handler's answer (the body is read here) | [`HttpLimits::request_timeout`]: then 503 |
//! | writing | the answer | its last byte is written | [`HttpLimits::request_timeout`] |
//!
//! At most [`HttpLimits::max_connections`] connections are open. At the cap
//! a new connection closes the one that has waited longest without a
//! request in progress (idle or still sending its head), so clients that
//! open connections and send nothing cannot lock others out; when every
//! connection is handling a request, the new one waits (in the kernel's
//! backlog) for a slot. On shutdown, connections without a request in
//! progress are closed at once and the others get their answer, within the
//! same bounds.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};
use tracing::{debug, warn};

/// How long connections may take, and how many there may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// A connection without a request in progress that sends nothing for this
    /// long is closed (keep-alive connections between requests included).
    pub idle_timeout: Duration,
    /// A request's head (request line and headers) must be complete this
    /// long after its first byte arrived.
    pub header_timeout: Duration,
    /// The handler must answer within this (reading the body included), or
    /// the answer is 503 with `Retry-After`; the answer must then be written
    /// within this again.
    pub request_timeout: Duration,
    /// Connections open at once (at least 1).
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            idle_timeout: Duration::from_secs(60),
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 512,
        }
    }
}

/// hyper's read and write buffer bound per connection (its default is ~400 KiB).
const MAX_BUF_SIZE: usize = 64 << 10;

/// Seconds a client is asked to wait after a request that took too long.
const RETRY_AFTER_SECS: u32 = 10;

/// Serves `router` on `listener` until `stop` completes, then closes the
/// connections without a request in progress, lets the others finish within
/// `limits`, and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    stop: impl Future<Output = ()>,
) {
    let max = limits.max_connections.clamp(1, 1 << 20);
    let slots = Arc::new(Semaphore::new(max));
    let open = Arc::new(Connections::default());
    let service = TowerToHyperService::new(router);
    let (stop_tx, stop_rx) = watch::channel(false);
    let epoch = Instant::now();
    tokio::pin!(stop);
    loop {
        let stream = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before
                    // it was accepted: wait a little rather than spin.
                    warn!(error = %e, "cannot accept a connection");
                    tokio::select! {
                        () = &mut stop => break,
                        () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    }
                }
            },
        };
        let permit = loop {
            if let Ok(permit) = slots.clone().try_acquire_owned() {
                break Some(permit);
            }
            if !open.evict_oldest_waiting() {
                debug!("connection cap reached, every connection busy: waiting for a slot");
            }
            tokio::select! {
                () = &mut stop => break None,
                permit = slots.clone().acquire_owned() => break permit.ok(),
                // The evicted connection may have started a request meanwhile.
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        };
        let Some(permit) = permit else { break };
        let _ = stream.set_nodelay(true);
        let state = Arc::new(ConnState::new(epoch));
        let id = open.add(state.clone());
        let (open, service, stop_rx) = (open.clone(), service.clone(), stop_rx.clone());
        tokio::spawn(async move {
            connection(stream, state, service, limits, stop_rx).await;
            open.remove(id);
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a slot until it is closed.
    let _ = slots
        .acquire_many(u32::try_from(max).unwrap_or(u32::MAX))
        .await;
}

/// Serves one connection until it ends, a bound is exceeded, it is evicted,
/// or the server stops while it has no request in progress.
async fn connection(
    stream: TcpStream,
    state: Arc<ConnState>,
    router: TowerToHyperService<Router>,
    limits: HttpLimits,
    mut stop: watch::Receiver<bool>,
) {
    let io = TokioIo::new(Tracked {
        io: stream,
        state: state.clone(),
    });
    let handler_state = state.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let (router, state) = (router.clone(), handler_state.clone());
        state.enter(Phase::Handling);
        async move {
            let answer = tokio::time::timeout(
                limits.request_timeout,
                hyper::service::Service::call(&router, request),
            )
            .await;
            let response = match answer {
                Ok(Ok(response)) => response,
                Ok(Err(never)) => match never {},
                Err(_) => too_slow(limits.request_timeout),
            };
            state.enter(Phase::Writing);
            let done = WritingDone(state);
            Ok::<_, Infallible>(response.map(|body| Body::new(TrackedBody { body, _done: done })))
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        // The watchdog below bounds the head (hyper's own timer starts
        // before the first byte, so it cannot tell idle from slow).
        .header_read_timeout(None)
        // A request head larger than this is refused: at the connection cap
        // buffers stay within a few tens of MiB.
        .max_buf_size(MAX_BUF_SIZE)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let tick = [
        limits.idle_timeout,
        limits.header_timeout,
        limits.request_timeout,
    ]
    .into_iter()
    .min()
    .unwrap_or_default()
    .div_f32(4.0)
    .clamp(Duration::from_millis(25), Duration::from_secs(1));
    let mut ticks = tokio::time::interval(tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stopping = *stop.borrow();
    loop {
        if stopping && state.waiting() {
            debug!("stopping: closing a connection without a request in progress");
            return;
        }
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    debug!(error = %e, "connection ended");
                }
                return;
            }
            _ = ticks.tick() => {
                if let Some(why) = state.expired(&limits) {
                    debug!(why, "closing a connection");
                    return;
                }
            }
            () = state.evict.notified() => {
                if state.waiting() {
                    debug!("connection cap reached: closing the connection that waited longest");
                    return;
                }
                state.evicting.store(false, Ordering::Relaxed);
            }
            changed = stop.changed(), if !stopping => {
                if changed.is_err() || *stop.borrow() {
                    stopping = true;
                    // No further requests on it; the one in progress is answered.
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// The answer to a request whose handler took longer than `limit`.
fn too_slow(limit: Duration) -> Response<Body> {
    let body = serde_json::json!({
        "error": format!("the request was not answered within {} s; retry later", limit.as_secs_f32())
    });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    response
}

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle = 0,
    Headers = 1,
    Handling = 2,
    Writing = 3,
}

impl Phase {
    fn from_bits(bits: u64) -> Phase {
        match bits {
            0 => Phase::Idle,
            1 => Phase::Headers,
            2 => Phase::Handling,
            _ => Phase::Writing,
        }
    }
}

/// A connection's phase and when it began, shared by its I/O, its handler
/// and its watchdog.
#[derive(Debug)]
struct ConnState {
    /// The phase in the top 8 bits, milliseconds since `epoch` below: one
    /// word, so the watchdog never sees a new phase with an old start.
    phase: AtomicU64,
    epoch: Instant,
    /// Told to close if it still has no request in progress.
    evict: Notify,
    /// Eviction asked and not yet answered (it is not chosen twice).
    evicting: AtomicBool,
}

const PHASE_SHIFT: u32 = 56;

impl ConnState {
    fn new(epoch: Instant) -> ConnState {
        let state = ConnState {
            phase: AtomicU64::new(0),
            epoch,
            evict: Notify::new(),
            evicting: AtomicBool::new(false),
        };
        state.enter(Phase::Idle);
        state
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX >> 8)
            & ((1 << PHASE_SHIFT) - 1)
    }

    fn pack(&self, phase: Phase) -> u64 {
        ((phase as u64) << PHASE_SHIFT) | self.now()
    }

    fn enter(&self, phase: Phase) {
        self.phase.store(self.pack(phase), Ordering::Release);
    }

    /// The phase and how long it has lasted.
    fn get(&self) -> (Phase, Duration) {
        let word = self.phase.load(Ordering::Acquire);
        let since = word & ((1 << PHASE_SHIFT) - 1);
        (
            Phase::from_bits(word >> PHASE_SHIFT),
            Duration::from_millis(self.now().saturating_sub(since)),
        )
    }

    /// Bytes arrived: an idle connection is sending a request head.
    fn bytes_arrived(&self) {
        let word = self.phase.load(Ordering::Acquire);
        if word >> PHASE_SHIFT == Phase::Idle as u64 {
            let _ = self.phase.compare_exchange(
                word,
                self.pack(Phase::Headers),
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
    }

    /// No request in progress: idle, or still sending its head.
    fn waiting(&self) -> bool {
        matches!(self.get().0, Phase::Idle | Phase::Headers)
    }

    /// Why the connection must be closed now, if it must.
    fn expired(&self, limits: &HttpLimits) -> Option<&'static str> {
        match self.get() {
            (Phase::Idle, age) if age >= limits.idle_timeout => Some("idle timeout"),
            (Phase::Headers, age) if age >= limits.header_timeout => {
                Some("request head not complete in time")
            }
            (Phase::Writing, age) if age >= limits.request_timeout => {
                Some("answer not written in time")
            }
            // Handling is bounded by the handler's own timeout.
            _ => None,
        }
    }
}

/// The open connections, for eviction at the cap.
#[derive(Debug, Default)]
struct Connections {
    next: AtomicU64,
    open: Mutex<std::collections::HashMap<u64, Arc<ConnState>>>,
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<u64, Arc<ConnState>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, state: Arc<ConnState>) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, state);
        id
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Tells the connection that has waited longest without a request in
    /// progress to close; false when there is none.
    fn evict_oldest_waiting(&self) -> bool {
        let open = self.lock();
        let oldest = open
            .values()
            .filter(|c| !c.evicting.load(Ordering::Relaxed))
            .filter_map(|c| {
                let (phase, age) = c.get();
                matches!(phase, Phase::Idle | Phase::Headers).then_some((age, c))
            })
            .max_by_key(|(age, _)| *age);
        match oldest {
            Some((_, c)) => {
                c.evicting.store(true, Ordering::Relaxed);
                c.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

/// A TCP stream that tells its connection when request bytes arrive.
struct Tracked {
    io: TcpStream,
    state: Arc<ConnState>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.state.bytes_arrived();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Marks the connection idle once the answer's body is dropped: hyper drops
/// it when the last byte is written (or the connection closes).
struct WritingDone(Arc<ConnState>);

impl Drop for WritingDone {
    fn drop(&mut self) {
        self.0.enter(Phase::Idle);
    }
}

/// An answer's body that carries its [`WritingDone`].
struct TrackedBody {
    body: Body,
    _done: WritingDone,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_expire_by_their_own_bound() {
        let limits = HttpLimits {
            idle_timeout: Duration::from_millis(300),
            header_timeout: Duration::from_millis(100),
            request_timeout: Duration::from_millis(200),
            max_connections: 1,
        };
        let state = Arc::new(ConnState::new(Instant::now()));
        assert_eq!(state.expired(&limits), None);
        std::thread::sleep(Duration::from_millis(150));
        // Idle for 150 ms: within the idle bound.
        assert_eq!(state.expired(&limits), None);
        state.bytes_arrived();
        assert_eq!(state.get().0, Phase::Headers);
        std::thread::sleep(Duration::from_millis(120));
        assert!(state.expired(&limits).is_some());
        // A head in progress is not restarted by more bytes.
        state.bytes_arrived();
        assert!(state.expired(&limits).is_some());
        state.enter(Phase::Handling);
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(
            state.expired(&limits),
            None,
            "the handler has its own timeout"
        );
        state.enter(Phase::Writing);
        assert!(!state.waiting());
        std::thread::sleep(Duration::from_millis(220));
        assert!(state.expired(&limits).is_some());
        // The answer written: idle again.
        drop(WritingDone(state.clone()));
        assert!(state.waiting() && state.expired(&limits).is_none());
    }

    #[test]
    fn eviction_picks_the_longest_waiting() {
        let open = Connections::default();
        let epoch = Instant::now();
        let busy = Arc::new(ConnState::new(epoch));
        busy.enter(Phase::Handling);
        let old = Arc::new(ConnState::new(epoch));
        open.add(busy.clone());
        open.add(old.clone());
        std::thread::sleep(Duration::from_millis(20));
        let young = Arc::new(ConnState::new(epoch));
        open.add(young.clone());
        assert!(open.evict_oldest_waiting());
        assert!(old.evicting.load(Ordering::Relaxed));
        assert!(!young.evicting.load(Ordering::Relaxed) && !busy.evicting.load(Ordering::Relaxed));
        assert!(open.evict_oldest_waiting());
        assert!(young.evicting.load(Ordering::Relaxed));
        // Only busy connections are left to choose from.
        assert!(!open.evict_oldest_waiting());
    }
}
