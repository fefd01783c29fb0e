//! HTTP routing and the two endpoints: authentication, body limits, status codes and JSON
//! error bodies a person can act on. An answer sent before the request's body was read
//! closes the connection and says so (`Connection: close`): the unread rest of the body
//! would otherwise be taken for the client's next request. Every sync request is counted
//! once in the metrics, under the [`Outcome`] its status comes from.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http_body_util::{BodyExt, Either, Full};
use hyper::body::{Body, Bytes, Incoming};
use hyper::header::{
    ALLOW, AUTHORIZATION, CONNECTION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue,
    RETRY_AFTER, USER_AGENT, VARY, WWW_AUTHENTICATE,
};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use tokio::sync::watch;

use crate::activity::Activity;
use crate::answer::AnswerBody;
use crate::body_budget::{self, BodyBudget, Reservation};
use crate::config::Config;
use crate::connection_slots::RequestTracker;
use crate::metrics::{Metrics, Outcome};
use crate::protocol;
use crate::store::{Caller, Store, StoreError};
use crate::tokens::Holder;

/// What every request handler shares.
pub struct AppState {
    /// The current settings; replaced on reload.
    pub config: watch::Receiver<Arc<Config>>,
    pub store: Store,
    /// Set once shutdown begins; requests that arrive after it get 503.
    pub shutting_down: AtomicBool,
    pub activity: Arc<Activity>,
    /// Request bodies held in memory, against `[server] max_bodies_in_flight_bytes`.
    pub body_budget: BodyBudget,
    /// What the server counts about itself, served at `[metrics] bind`.
    pub metrics: Arc<Metrics>,
}

/// A response: a JSON body made whole, or a sync answer written as it is sent.
type HttpResponse = Response<Either<Full<Bytes>, AnswerBody>>;

/// The response to a sync request, and what it counts as; its status is the outcome's.
type SyncAnswer = (Outcome, HttpResponse);

/// Seconds a client is asked to wait before retrying a request refused for lack of room.
const RETRY_AFTER_SECS: u64 = 5;
/// Seconds a device is asked to wait before syncing again when the database is locked.
const BUSY_RETRY_AFTER_SECS: u64 = 2;

/// Routes one request; `tracker` follows it for the connection's slot. Never fails: every
/// problem becomes a status and a JSON error body.
pub async fn handle(
    request: Request<Incoming>,
    state: &AppState,
    tracker: &RequestTracker,
) -> Result<HttpResponse, Infallible> {
    let body_pending = !request.body().is_end_stream();
    let path = request.uri().path();
    let response = match (path, request.method()) {
        ("/health", &Method::GET | &Method::HEAD) => health(),
        ("/health", _) => method_not_allowed("GET, HEAD"),
        ("/api/v1/sync", &Method::POST) => {
            let (outcome, response) = sync(request, state, tracker).await;
            count_sync(
                &state.metrics,
                outcome,
                &response,
                tracker.started().elapsed(),
            );
            return Ok(response);
        }
        ("/api/v1/sync", _) => method_not_allowed("POST"),
        _ => error(
            StatusCode::NOT_FOUND,
            &format!(
                "no such endpoint: {} {path}; this server answers POST /api/v1/sync and GET /health",
                request.method()
            ),
        ),
    };
    // These endpoints read no body: one that was sent is left unread.
    Ok(if body_pending {
        closing(response)
    } else {
        response
    })
}

/// Counts a sync request once, as its answer's head goes out. An answer made whole counts
/// its bytes now; a streamed one counts them as it is sent (see `answer`).
fn count_sync(metrics: &Metrics, outcome: Outcome, response: &HttpResponse, elapsed: Duration) {
    if let Either::Left(whole) = response.body() {
        let bytes = whole.size_hint().exact().unwrap_or(0);
        metrics.response_bytes(usize::try_from(bytes).unwrap_or(usize::MAX));
    }
    metrics.sync_answered(outcome, elapsed);
}

fn health() -> HttpResponse {
    json(
        StatusCode::OK,
        &serde_json::json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }),
    )
}

async fn sync(
    request: Request<Incoming>,
    state: &AppState,
    tracker: &RequestTracker,
) -> SyncAnswer {
    if state.shutting_down.load(Ordering::Relaxed) {
        return shutting_down();
    }
    let config = state.config.borrow().clone();
    let caller = match authenticate(&request, &config, tracker).await {
        Ok(holder) => Caller::new(
            &holder.account,
            &holder.name,
            request.headers().get(USER_AGENT).map(HeaderValue::as_bytes),
        ),
        Err(response) => return *response,
    };
    let account = caller.account.clone();
    let request_headers = request.headers().clone();
    // The share of the budget stays held until this returns: the body and what is decoded
    // from it are in memory until the sync is applied.
    let (body, _budget_share) = match read_body(request, &config, state, tracker).await {
        Ok(received) => received,
        Err(response) => return *response,
    };
    let limits = protocol::Limits {
        max_records: config.max_records_per_request,
        max_text_bytes: config.max_text_bytes,
    };
    let sync_request = match protocol::parse_request(body, &limits) {
        Ok(sync_request) => sync_request,
        Err(refusal) => {
            let outcome = match refusal {
                protocol::Refusal::Invalid(_) => Outcome::BadRequest,
                protocol::Refusal::TooManyRecords { .. } => Outcome::TooLarge,
            };
            return refused(outcome, &refusal.to_string());
        }
    };
    let received = sync_request.changes.len();
    let skew_allowance = config.clock_skew_allowance;
    match state.store.sync(caller, sync_request, skew_allowance).await {
        Ok(outcome) => {
            if let Some(warning) = &outcome.clock_warning {
                eprintln!("warning: account {account:?}: {warning}");
            }
            state.activity.record_sync();
            state.metrics.records_received(received);
            answer(outcome, &request_headers, state).await
        }
        Err(StoreError::WriterGone) => shutting_down(),
        Err(StoreError::Busy(e)) => {
            eprintln!(
                "warning: sync for account {account:?} refused, nothing was changed: another \
                 process holds a lock on the database ({e}); stop whatever has it open"
            );
            database_busy()
        }
        Err(StoreError::Database(e)) => {
            eprintln!("error: sync for account {account:?} failed, nothing was changed: {e}");
            refused(
                Outcome::Error,
                &format!(
                    "the server's database failed, nothing was changed: {e}; see the server log"
                ),
            )
        }
    }
}

/// Whose the request's bearer token is, or the 401 to send; a valid token is reported to
/// `tracker`. A token of the original server's argon2 entries may wait for its one
/// verification (see `tokens`).
async fn authenticate(
    request: &Request<Incoming>,
    config: &Config,
    tracker: &RequestTracker,
) -> Result<Holder, Box<SyncAnswer>> {
    let header = request
        .headers()
        .get(AUTHORIZATION)
        .map(HeaderValue::to_str);
    let token = match header {
        None => {
            return Err(unauthorized(
                "missing Authorization header; send `Authorization: Bearer <token>` \
                 (the token in the [sync] section of the client's config)",
            ));
        }
        Some(Ok(value)) => match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => {
                return Err(unauthorized(
                    "the Authorization header must be `Bearer <token>`",
                ));
            }
        },
        Some(Err(_)) => {
            return Err(unauthorized(
                "the Authorization header is not readable text",
            ));
        }
    };
    match config.tokens.holder_of(token).await {
        Some(holder) => {
            tracker.token_accepted();
            Ok(holder.clone())
        }
        None => Err(unauthorized(
            "unknown token: it is not in the server's config (revoked, or mistyped); \
             make one with `tickit-sync token --name DEVICE` on the server",
        )),
    }
}

/// Collects the body within `[server] request_timeout_secs` of the request's start and
/// within the memory budget, refusing with 413 anything over `max_body_bytes` before or while
/// reading it. Once the body is whole, the request is no longer shed to make room for others.
async fn read_body<'a>(
    request: Request<Incoming>,
    config: &Config,
    state: &'a AppState,
    tracker: &RequestTracker,
) -> Result<(Bytes, Reservation<'a>), Box<SyncAnswer>> {
    let deadline = tracker.started() + config.request_timeout;
    let collecting = collect_within_budget(request, config, state);
    let received = tokio::select! {
        collected = tokio::time::timeout_at(deadline, collecting) => match collected {
            Ok(collected) => collected,
            Err(_) => Err(request_timed_out(config)),
        },
        () = tracker.shed() => Err(shed_to_make_room(config)),
    }?;
    tracker
        .start_applying()
        .map_err(|_| shed_to_make_room(config))?;
    Ok(received)
}

/// The body, and its share of the state's body budget: the declared length reserved
/// before reading, or, without one, reserved as the body arrives.
async fn collect_within_budget<'a>(
    request: Request<Incoming>,
    config: &Config,
    state: &'a AppState,
) -> Result<(Bytes, Reservation<'a>), Box<SyncAnswer>> {
    let limit = config.max_body_bytes;
    let capacity = config.max_bodies_in_flight_bytes;
    let too_large = |size: &str| {
        closing_refusal(
            Outcome::TooLarge,
            &format!(
                "request body is {size}, over this server's limit of {limit} bytes; \
                 raise [server] max_body_bytes in the server's config.toml"
            ),
        )
    };
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if let Some(declared) = declared.filter(|&declared| declared > limit) {
        return Err(too_large(&format!("{declared} bytes")));
    }
    let declared = declared.unwrap_or(0);
    let mut share = state
        .body_budget
        .reserve(declared, capacity)
        .await
        .map_err(|_| no_room_for_body(capacity))?;
    let mut collected = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
    let mut body = request.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            closing_refusal(
                Outcome::BadRequest,
                &format!("could not read the request body: {e}"),
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        state.metrics.request_bytes(data.len());
        let length = (collected.len() + data.len()) as u64;
        if length > limit {
            return Err(too_large("larger than that"));
        }
        share
            .grow_to(length)
            .await
            .map_err(|_| no_room_for_body(capacity))?;
        collected.extend_from_slice(&data);
    }
    Ok((Bytes::from(collected), share))
}

/// The 200 answer to a sync, streamed (see `answer`). The sync is committed by then, so a
/// failure to read its answer says so: the device syncs again and receives it.
async fn answer(
    outcome: crate::store::SyncOutcome,
    request_headers: &hyper::HeaderMap,
    state: &AppState,
) -> SyncAnswer {
    let body = AnswerBody::new(outcome, request_headers, &state.store, &state.metrics).await;
    let body = match body {
        Ok(body) => body,
        Err(e) => {
            eprintln!("error: a sync was saved but its answer could not be read: {e}");
            return refused(
                Outcome::Error,
                &format!(
                    "the sync was saved, but reading its answer failed: {e}; sync again to \
                     receive it, and see the server log"
                ),
            );
        }
    };
    let compressed = body.is_gzip();
    let mut response = Response::new(Either::Right(body));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
    if compressed {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    (Outcome::Ok, response)
}

fn json(status: StatusCode, body: &impl Serialize) -> HttpResponse {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Either::Left(Full::new(Bytes::from(bytes))));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// An error response: `{"error": "<message>"}`.
fn error(status: StatusCode, message: &str) -> HttpResponse {
    json(status, &serde_json::json!({ "error": message }))
}

/// A sync request refused as `outcome`, with its status and `message`.
fn refused(outcome: Outcome, message: &str) -> SyncAnswer {
    (outcome, error(outcome.status(), message))
}

/// [`refused`], closing the connection: for refusals sent before the body was read.
fn closing_refusal(outcome: Outcome, message: &str) -> Box<SyncAnswer> {
    let (outcome, response) = refused(outcome, message);
    Box::new((outcome, closing(response)))
}

/// `response`, closing the connection after it: for answers sent before the body was read.
fn closing(mut response: HttpResponse) -> HttpResponse {
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// `response`, asking the client to try again after `seconds`.
fn retry_after(mut response: HttpResponse, seconds: u64) -> HttpResponse {
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// A 503 that asks the client to retry in [`RETRY_AFTER_SECS`], closing the connection.
fn retry_later(message: &str) -> Box<SyncAnswer> {
    let mut refusal = closing_refusal(Outcome::Busy, message);
    refusal.1 = retry_after(refusal.1, RETRY_AFTER_SECS);
    refusal
}

fn no_room_for_body(capacity: u64) -> Box<SyncAnswer> {
    retry_later(&format!(
        "the server is holding as many request bodies as it may ({capacity} bytes, [server] \
         max_bodies_in_flight_bytes) and none finished within {}s; nothing was changed, \
         sync again later, or raise that setting in the server's config.toml",
        body_budget::WAIT_FOR_ROOM.as_secs()
    ))
}

fn shed_to_make_room(config: &Config) -> Box<SyncAnswer> {
    retry_later(&format!(
        "this request was still arriving when every connection slot was taken ([server] \
         max_connections = {}), so it was set aside for a newer one; nothing was changed, \
         sync again",
        config.max_connections
    ))
}

fn request_timed_out(config: &Config) -> Box<SyncAnswer> {
    closing_refusal(
        Outcome::Timeout,
        &format!(
            "the request body did not arrive within {}s ([server] request_timeout_secs); \
             nothing was changed: sync again on a better connection, or raise that setting \
             in the server's config.toml",
            config.request_timeout.as_secs()
        ),
    )
}

fn unauthorized(message: &str) -> Box<SyncAnswer> {
    let mut refusal = closing_refusal(Outcome::Unauthorized, message);
    refusal
        .1
        .headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    refusal
}

fn method_not_allowed(allow: &'static str) -> HttpResponse {
    let mut response = error(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("method not allowed here; use {allow}"),
    );
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

/// 503 for a database another process has locked: the device tries again shortly.
fn database_busy() -> SyncAnswer {
    let (outcome, busy) = refused(
        Outcome::Busy,
        "the server's database is busy (locked by another process); nothing was changed, \
         sync again in a moment",
    );
    (outcome, retry_after(busy, BUSY_RETRY_AFTER_SECS))
}

fn shutting_down() -> SyncAnswer {
    *closing_refusal(
        Outcome::ShuttingDown,
        "the server is shutting down; nothing was changed, sync again in a moment",
    )
}
