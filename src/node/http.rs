//! The node's HTTP surface: ingest, health and metrics.
//!
//! - `POST /v1/events`: a batch of observations (see [`super::body`] for the
//!   accepted content types). The answer lists every item: `accepted` with its
//!   log sequence, `duplicate` (its id was logged before; nothing appended)
//!   or `rejected` with the reason token and message. 200 when anything was
//!   accepted, 400 when every item failed, 413 over `max_body_bytes`, 503
//!   while shutting down. Rejected items are kept in the dead-letter store.
//!   The answer is sent only once accepted events are durable.
//! - `GET /v1/state/<agent>/<service>`: what `agent` holds about `service`
//!   (see [`super::state`]); `GET /v1/state/<agent>`: its overview. 404 with
//!   the reason for an agent not running here or a service it knows nothing of.
//! - `GET /v1/decisions?after=SEQ&limit=N&wait_ms=MS`: decisions logged after
//!   `SEQ`, waiting up to `wait_ms` (≤ 5 s) for one to come (`faultline
//!   tail` follows a node with it). Without `after`: none, and `next` set to
//!   the end of the log, to follow from now.
//! - With `http_token` set, every `/v1/*` request needs
//!   `Authorization: Bearer <token>` (401 otherwise); health and metrics stay
//!   open so probes and scrapers need no secret.
//! - `GET /livez`: the process serves requests.
//! - `GET /readyz`: the log is reachable, every agent has caught up since it
//!   started, and none has had records waiting while applying none for
//!   [`STALLED`](super::status::STALLED).
//! - `GET /metrics`: OpenMetrics text.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use serde_json::json;

use super::backend::{Appended, Backend};
use super::body::{framing, split};
use super::settings::{NodeSettings, Secret};
use super::{wall_now, NodeError, Shared};
use crate::events::Rejection;

/// How long `GET /v1/decisions` may hold a request open.
const MAX_WAIT_MS: u64 = 5_000;

#[derive(Clone)]
struct App {
    backend: Backend,
    shared: Arc<Shared>,
    max_ahead_s: u64,
    token: Option<Secret>,
}

/// Binds and serves; returns the bound address, a stop switch and the task.
pub async fn serve(
    settings: NodeSettings,
    backend: Backend,
    shared: Arc<Shared>,
) -> Result<
    (
        SocketAddr,
        tokio::sync::watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    ),
    NodeError,
> {
    let app = App {
        backend,
        shared,
        max_ahead_s: settings.max_ahead_s,
        token: settings.http_token.clone(),
    };
    let router = Router::new()
        .route("/v1/events", post(ingest))
        .route("/v1/decisions", get(decisions))
        .route("/v1/state/{agent}", get(overview))
        .route("/v1/state/{agent}/{service}", get(state))
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(settings.http)
        .await
        .map_err(|e| NodeError::Http {
            addr: settings.http,
            message: e.to_string(),
        })?;
    let addr = listener.local_addr().map_err(|e| NodeError::Http {
        addr: settings.http,
        message: e.to_string(),
    })?;
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    });
    Ok((addr, stop, task))
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `None` when the request may proceed; the 401 answer otherwise.
fn unauthorized(app: &App, headers: &HeaderMap) -> Option<Response> {
    let want = app.token.as_ref()?;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(t) if constant_time_eq(t.as_bytes(), want.0.as_bytes()) => None,
        Some(_) => Some(json_response(
            StatusCode::UNAUTHORIZED,
            json!({"error": "the bearer token is not the node's http_token"}),
        )),
        None => Some(json_response(
            StatusCode::UNAUTHORIZED,
            json!({"error": "this node requires `Authorization: Bearer <http_token>`"}),
        )),
    }
}

/// Compares without an early exit, so timing does not reveal a prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn state(
    State(app): State<App>,
    headers: HeaderMap,
    Path((agent, service)): Path<(String, String)>,
) -> Response {
    if let Some(denied) = unauthorized(&app, &headers) {
        return denied;
    }
    state_response(&app, &agent, Some(&service))
}

async fn overview(
    State(app): State<App>,
    headers: HeaderMap,
    Path(agent): Path<String>,
) -> Response {
    if let Some(denied) = unauthorized(&app, &headers) {
        return denied;
    }
    state_response(&app, &agent, None)
}

async fn decisions(State(app): State<App>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    if let Some(denied) = unauthorized(&app, &headers) {
        return denied;
    }
    let mut after = None;
    let (mut limit, mut wait_ms) = (1000usize, 0u64);
    for pair in q
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let bad = || {
            json_response(
                StatusCode::BAD_REQUEST,
                json!({"error": format!("query parameter {k}={v:?} is not a non-negative integer")}),
            )
        };
        let Ok(n) = v.parse::<u64>() else {
            return bad();
        };
        match k {
            "after" => after = Some(n),
            "limit" => limit = (n as usize).clamp(1, 10_000),
            "wait_ms" => wait_ms = n.min(MAX_WAIT_MS),
            _ => {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    json!({"error": format!("unknown query parameter {k:?} (after, limit, wait_ms)")}),
                )
            }
        }
    }
    let unavailable = |e: NodeError| {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": format!("reading the log: {e}")}),
        )
    };
    let Some(after) = after else {
        return match app.backend.last_seq().await {
            Ok(last) => json_response(StatusCode::OK, json!({"next": last, "decisions": []})),
            Err(e) => unavailable(e),
        };
    };
    let batch = match app.backend.reader(after + 1).await {
        Ok(mut r) => {
            r.next_batch(limit, std::time::Duration::from_millis(wait_ms))
                .await
        }
        Err(e) => return unavailable(e),
    };
    let batch = match batch {
        Ok(b) => b,
        Err(e) => return unavailable(e),
    };
    let next = batch.last().map_or(after, |(seq, _)| *seq);
    let decisions: Vec<serde_json::Value> = (batch.into_iter())
        .filter_map(|(seq, r)| r.ok().map(|e| (seq, e)))
        .filter(|(_, e)| e.event_type().is_decision())
        .map(|(seq, e)| json!({"seq": seq, "event": e}))
        .collect();
    json_response(
        StatusCode::OK,
        json!({"next": next, "decisions": decisions}),
    )
}

fn state_response(app: &App, agent: &str, service: Option<&str>) -> Response {
    let (status, body) = app.shared.state_answer(agent, service);
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

async fn ingest(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(denied) = unauthorized(&app, &headers) {
        return denied;
    }
    if app.shared.stopping.load(Ordering::SeqCst) {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "the node is shutting down"}),
        );
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let items = match framing(content_type).and_then(|f| split(f, &body)) {
        Ok(items) if !items.is_empty() => items,
        Ok(_) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({"error": "the body holds no events"}),
            )
        }
        Err(r) => {
            app.shared.metrics.reject(r.reason());
            if let Err(e) = app.backend.dead_letter(&r, &body, &origin(&body)).await {
                tracing::error!(error = %e, "could not keep a rejected body");
            }
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({"error": r.to_string(), "reason": r.reason()}),
            );
        }
    };
    let now = wall_now();
    let bound = app.max_ahead_s;
    let mut results: Vec<serde_json::Value> = vec![serde_json::Value::Null; items.len()];
    let mut valid = Vec::new();
    let mut valid_at = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let checked = item.event.and_then(|e| {
            let ahead_s = (e.time.nanos() - now.nanos()) / 1_000_000_000;
            if ahead_s > bound as i64 {
                Err(Rejection::TooFarAhead {
                    time: e.time.to_string(),
                    ahead_s,
                    bound_s: bound,
                })
            } else {
                Ok(e)
            }
        });
        match checked {
            Ok(e) => {
                valid.push(e);
                valid_at.push(i);
            }
            Err(r) => {
                app.shared.metrics.reject(r.reason());
                if let Err(e) = app
                    .backend
                    .dead_letter(&r, &item.bytes, &origin(&item.bytes))
                    .await
                {
                    tracing::error!(error = %e, "could not keep a rejected event");
                }
                results[i] = json!({"index": i, "status": "rejected", "reason": r.reason(), "error": r.to_string()});
            }
        }
    }
    let appended = match app.backend.append_inputs(&valid).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "appending inputs failed");
            return json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": format!("the log did not take the events: {e}; nothing was accepted, retry")}),
            );
        }
    };
    let (mut accepted, mut duplicates) = (0, 0);
    for ((i, e), a) in valid_at.into_iter().zip(&valid).zip(appended) {
        results[i] = match a {
            Appended::New(seq) => {
                accepted += 1;
                json!({"index": i, "id": e.id, "status": "accepted", "seq": seq})
            }
            Appended::Duplicate(seq) => {
                duplicates += 1;
                json!({"index": i, "id": e.id, "status": "duplicate", "seq": seq})
            }
        };
    }
    app.shared.metrics.ingested.inc_by(accepted as u64);
    let rejected = results.len() - accepted - duplicates;
    let status = if accepted + duplicates == 0 {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    json_response(
        status,
        json!({"accepted": accepted, "duplicates": duplicates, "rejected": rejected, "results": results}),
    )
}

/// Names a rejected HTTP item by its content, so its DLQ copy has a dedupe id
/// of its own (the same bytes sent twice are kept once).
fn origin(bytes: &[u8]) -> String {
    format!("http-{:016x}", crate::fnv::fnv1a64(bytes))
}

async fn ready(State(app): State<App>) -> Response {
    let mut problems = Vec::new();
    if let Backend::JetStream(js) = &app.backend {
        if !js.connected() {
            problems.push("not connected to NATS".to_owned());
        }
    }
    let last = app.backend.last_seq().await.ok();
    let statuses = match last {
        Some(last) => app.shared.observe_progress(last),
        None => {
            problems.push("the log (stream) is not reachable".to_owned());
            app.shared.statuses()
        }
    };
    // Where the log ends is only the agents' end when the stream holds
    // nothing else (a stream shared with other subjects ends wherever they do).
    let exact = last.filter(|_| app.backend.holds_only_the_nodes());
    let now = std::time::Instant::now();
    for (name, s) in statuses {
        if let Some(why) = s.unready(exact, now) {
            problems.push(format!("agent {name} {why}"));
        }
    }
    if problems.is_empty() {
        json_response(StatusCode::OK, json!({"ready": true}))
    } else {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"ready": false, "problems": problems}),
        )
    }
}

async fn metrics(State(app): State<App>) -> Response {
    // Lag against the log as it is now, not as the ticker last saw it: a
    // scrape is what alerts on a stuck node, so it must not read a value
    // left from before the node got stuck.
    if let Ok(last) = app.backend.last_seq().await {
        app.shared.observe_progress(last);
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.shared.metrics.render(),
    )
        .into_response()
}
