//! The reference platform as a lab server (`camcert serve gb28181-platform`):
//! every event logged as a timestamped line, a table of the devices it has
//! seen with their last keepalive, and a small local HTTP API to act on
//! them.
//!
//! The API (JSON in and out, bound to the address given with `--control`,
//! loopback by default):
//!
//! | request | effect |
//! | --- | --- |
//! | `GET /devices` | devices seen: address, registration, keepalives, last keepalive, online |
//! | `GET /events?since=N` | logged events after sequence number N (the newest 1,000 are kept) |
//! | `GET /sessions` | media sessions that ended, each with its stream summary |
//! | `GET /actions` | the actions `POST` takes |
//! | `POST /devices/{id}/{action}` | a platform action (`query-catalog`, `ptz`, `play`, `bye`, ...) on that device; the JSON object body gives its arguments (`{"direction": "left", "speed": "5"}`) |
//!
//! An action answers as soon as the platform has sent its request; what
//! comes back (the collected catalog, the answer, the session's start) shows
//! in `/events`, and a finished media session in `/sessions`.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::{Context, Result};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tracing::Level;

use crate::peers::{PeerHandle, SessionLog};
use crate::proto::gb28181::device::DeviceEvent;
use crate::proto::gb28181::platform::{Platform, PlatformEvent};

/// How many events `/events` keeps.
const EVENT_LOG: usize = 1000;

/// A device as the lab platform has seen it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeviceView {
    pub id: String,
    /// Where its requests come from.
    pub addr: Option<String>,
    pub registered: bool,
    pub online: bool,
    pub expires: Option<u32>,
    pub registered_at: Option<String>,
    pub keepalives: u64,
    pub last_keepalive: Option<String>,
    /// The `<Status>` of its last keepalive.
    pub last_status: Option<String>,
    /// Registrations refused (bad credentials, unknown ID, ...).
    pub refusals: u64,
}

/// One logged event.
#[derive(Debug, Clone, Serialize)]
pub struct LoggedEvent {
    pub seq: u64,
    pub at: String,
    pub level: String,
    pub device_id: Option<String>,
    pub text: String,
}

/// What the lab platform knows: the device table and the event log.
#[derive(Debug, Default)]
pub struct LabState {
    devices: BTreeMap<String, DeviceView>,
    events: VecDeque<LoggedEvent>,
    seq: u64,
}

fn timestamp(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Local>::from(t)
        .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

/// A one-line description of an event for the log, its level, and the
/// device it concerns.
pub fn describe(e: &PlatformEvent) -> (Level, Option<&str>, String) {
    use PlatformEvent as E;
    match e {
        E::Registered {
            device_id,
            from,
            expires,
            refresh,
        } => (
            Level::INFO,
            Some(device_id),
            format!(
                "{} from {from}, expires {expires} s",
                if *refresh { "refreshed" } else { "registered" }
            ),
        ),
        E::Unregistered { device_id } => (Level::INFO, Some(device_id), "unregistered".into()),
        E::Expired { device_id } => (Level::WARN, Some(device_id), "registration expired".into()),
        E::Rejected {
            device_id,
            status,
            reason,
        } => (
            Level::WARN,
            device_id.as_deref(),
            format!("registration refused with {status}: {reason}"),
        ),
        E::Redirected {
            device_id,
            contact,
            expires,
        } => (
            Level::INFO,
            Some(device_id),
            format!("redirected to {contact}, expires {expires} s"),
        ),
        E::Keepalive {
            device_id, status, ..
        } => (
            Level::DEBUG,
            Some(device_id),
            format!(
                "keepalive, status {}",
                status.as_deref().unwrap_or("(none)")
            ),
        ),
        E::KeepaliveRefused { device_id, status } => (
            Level::WARN,
            Some(device_id),
            format!("keepalive from an unregistered device refused with {status}"),
        ),
        E::Offline { device_id } => (
            Level::WARN,
            Some(device_id),
            "offline: keepalives missed".into(),
        ),
        E::Answer {
            device_id,
            cmd,
            sn,
            result,
            ..
        } => (
            Level::INFO,
            Some(device_id),
            format!(
                "{cmd} answer (SN {sn}){}",
                result
                    .as_deref()
                    .map(|r| format!(", result {r}"))
                    .unwrap_or_default()
            ),
        ),
        E::Collected {
            device_id,
            cmd,
            sn,
            items,
            messages,
            complete,
            findings,
        } => (
            if *complete && findings.is_empty() {
                Level::INFO
            } else {
                Level::WARN
            },
            Some(device_id),
            format!(
                "{cmd} (SN {sn}): {items} items in {messages} messages, {}{}",
                if *complete { "complete" } else { "incomplete" },
                if findings.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; findings: {}",
                        findings
                            .iter()
                            .map(|f| f.to_string())
                            .collect::<Vec<_>>()
                            .join("; ")
                    )
                }
            ),
        ),
        E::Alarm {
            device_id,
            sn,
            priority,
            method,
        } => (
            Level::INFO,
            Some(device_id),
            format!(
                "alarm SN {} priority {} method {}",
                opt(sn),
                opt(priority),
                opt(method)
            ),
        ),
        E::Notified {
            device_id,
            event,
            cmd,
        } => (
            Level::INFO,
            Some(device_id),
            format!(
                "NOTIFY {} {}",
                event.as_deref().unwrap_or("-"),
                cmd.as_deref().unwrap_or("-")
            ),
        ),
        E::Subscribed {
            device_id,
            event,
            expires,
        } => (
            Level::INFO,
            Some(device_id),
            format!("subscribed to {event}, expires {expires} s"),
        ),
        E::SubscriptionEnded { device_id, event } => (
            Level::INFO,
            Some(device_id),
            format!("subscription to {event} ended"),
        ),
        E::RequestFailed {
            target,
            method,
            status,
        } => (
            Level::WARN,
            Some(target),
            format!(
                "{method} failed: {}",
                status
                    .map(|s| format!("answered {s}"))
                    .unwrap_or_else(|| "no answer".into())
            ),
        ),
        E::UpstreamRegistered { expires } => (
            Level::INFO,
            None,
            format!("registered to the upper platform, expires {expires} s"),
        ),
        E::UpstreamOffline { reason } => (
            Level::WARN,
            None,
            format!("upper platform offline: {reason}"),
        ),
        E::Forwarded { device_id, cmd } => (
            Level::INFO,
            Some(device_id),
            format!("{cmd} from the upper platform passed on"),
        ),
        E::Session { call_id, event } => (
            Level::INFO,
            None,
            format!("media session {call_id}: {event:?}"),
        ),
        E::Broadcast { device_id, event } => (
            Level::INFO,
            Some(device_id),
            format!("broadcast: {event:?}"),
        ),
        E::Ignored { from, summary } => (
            Level::DEBUG,
            None,
            format!("ignored from {from}: {summary}"),
        ),
    }
}

/// The same for the reference camera's events.
pub fn describe_camera(e: &DeviceEvent) -> (Level, String) {
    use DeviceEvent as E;
    match e {
        E::Registered {
            expires,
            date,
            findings,
        } => (
            if findings.is_empty() {
                Level::INFO
            } else {
                Level::WARN
            },
            format!(
                "registered, expires {expires} s{}{}",
                date.as_deref()
                    .map(|d| format!(", platform time {d}"))
                    .unwrap_or_default(),
                if findings.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; findings: {}",
                        findings
                            .iter()
                            .map(|f| format!("{}: {}", f.code, f.message))
                            .collect::<Vec<_>>()
                            .join("; ")
                    )
                }
            ),
        ),
        E::Unregistered => (Level::INFO, "unregistered".into()),
        E::Rejected { status } => (Level::WARN, format!("registration refused with {status}")),
        E::TimedOut => (Level::WARN, "no answer from the platform".into()),
        E::BadMessage { reason } => (Level::WARN, format!("unusable message: {reason}")),
        E::Redirected {
            server_id,
            server,
            expires,
        } => (
            Level::INFO,
            format!(
                "redirected to {server_id}@{server}, expires {}",
                opt(expires)
            ),
        ),
        E::PlatformOffline { missed } => (
            Level::WARN,
            format!("platform offline: {missed} keepalives unanswered; registering again"),
        ),
        E::Controlled { command } => (Level::INFO, format!("control carried out: {command}")),
        E::ControlRejected { reason } => (Level::WARN, format!("control refused: {reason}")),
        E::Rebooting => (Level::INFO, "rebooting".into()),
        E::Subscribed { event, expires } => (
            Level::INFO,
            format!("subscription to {event} accepted, expires {expires} s"),
        ),
        E::SubscriptionEnded { event, reason } => (
            Level::INFO,
            format!("subscription to {event} ended: {reason}"),
        ),
        E::AlarmAcknowledged { sn, result } => (
            Level::INFO,
            format!(
                "alarm SN {} acknowledged, result {}",
                opt(sn),
                result.as_deref().unwrap_or("-")
            ),
        ),
        E::RequestFailed { method, status } => (
            Level::WARN,
            format!(
                "{method} failed: {}",
                status
                    .map(|s| format!("answered {s}"))
                    .unwrap_or_else(|| "no answer".into())
            ),
        ),
        E::Session { call_id, event } => {
            (Level::INFO, format!("media session {call_id}: {event:?}"))
        }
    }
}

/// Log a camera event as a timestamped line.
pub fn log_camera(e: &DeviceEvent) {
    let (level, text) = describe_camera(e);
    if level == Level::WARN {
        tracing::warn!("{text}");
    } else {
        tracing::info!("{text}");
    }
}

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map(|v| v.to_string())
        .unwrap_or_else(|| "-".into())
}

impl LabState {
    /// Log `e` and update the device table.
    pub fn record(&mut self, e: &PlatformEvent, at: SystemTime) {
        let (level, device, text) = describe(e);
        match level {
            Level::WARN => tracing::warn!(device = device.unwrap_or("-"), "{text}"),
            Level::DEBUG => tracing::debug!(device = device.unwrap_or("-"), "{text}"),
            _ => tracing::info!(device = device.unwrap_or("-"), "{text}"),
        }
        let when = timestamp(at);
        if let Some(id) = device {
            let d = self
                .devices
                .entry(id.to_string())
                .or_insert_with(|| DeviceView {
                    id: id.to_string(),
                    ..DeviceView::default()
                });
            use PlatformEvent as E;
            match e {
                E::Registered { from, expires, .. } => {
                    d.addr = Some(from.to_string());
                    d.registered = true;
                    d.online = true;
                    d.expires = Some(*expires);
                    d.registered_at = Some(when.clone());
                }
                E::Unregistered { .. } | E::Expired { .. } => {
                    d.registered = false;
                    d.online = false;
                }
                E::Rejected { .. } => d.refusals += 1,
                E::Keepalive { status, .. } => {
                    d.keepalives += 1;
                    d.online = true;
                    d.last_keepalive = Some(when.clone());
                    d.last_status = status.clone();
                }
                E::Offline { .. } => d.online = false,
                _ => {}
            }
        }
        self.seq += 1;
        if self.events.len() == EVENT_LOG {
            self.events.pop_front();
        }
        self.events.push_back(LoggedEvent {
            seq: self.seq,
            at: when,
            level: level.to_string(),
            device_id: device.map(str::to_string),
            text,
        });
    }

    pub fn devices(&self) -> Vec<DeviceView> {
        self.devices.values().cloned().collect()
    }

    pub fn events_since(&self, since: u64) -> Vec<LoggedEvent> {
        self.events
            .iter()
            .filter(|e| e.seq > since)
            .cloned()
            .collect()
    }
}

/// A finished media session as `/sessions` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SessionView {
    pub call_id: String,
    pub packets: u64,
    pub lost_packets: u64,
    pub video_frames: u64,
    pub key_frames: u64,
    pub frame_rate: Option<f64>,
    pub bitrate_kbps: Option<f64>,
    pub jitter_ms: f64,
    pub first_key_frame_ms: Option<u64>,
    /// Validator findings, as `code: message`.
    pub findings: Vec<String>,
    pub errors: Vec<String>,
}

fn sessions(log: &SessionLog) -> Vec<SessionView> {
    let log = log.lock().unwrap_or_else(|e| e.into_inner());
    log.iter()
        .map(|(call_id, r)| {
            let v = r.received.as_ref().map(|rx| &rx.validation);
            SessionView {
                call_id: call_id.clone(),
                packets: v.map(|v| v.packets).unwrap_or(0),
                lost_packets: v.map(|v| v.lost_packets).unwrap_or(0),
                video_frames: v.map(|v| v.video_frames).unwrap_or(0),
                key_frames: v.map(|v| v.key_frames).unwrap_or(0),
                frame_rate: v.and_then(|v| v.frame_rate),
                bitrate_kbps: v.and_then(|v| v.bitrate_bps).map(|b| b / 1000.0),
                jitter_ms: v.map(|v| v.jitter_ms).unwrap_or(0.0),
                first_key_frame_ms: v
                    .and_then(|v| v.time_to_first_key_frame)
                    .map(|d| d.as_millis() as u64),
                findings: v
                    .map(|v| v.findings.iter().map(|f| format!("{f:?}")).collect())
                    .unwrap_or_default(),
                errors: r.errors.clone(),
            }
        })
        .collect()
}

struct Api {
    state: Arc<Mutex<LabState>>,
    peer: Arc<PeerHandle<Platform>>,
}

type Shared = Arc<Api>;

#[derive(Deserialize)]
struct Since {
    #[serde(default)]
    since: u64,
}

#[derive(Serialize)]
struct ActionResult {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

async fn act(
    State(api): State<Shared>,
    Path((device, action)): Path<(String, String)>,
    body: Option<Json<BTreeMap<String, serde_json::Value>>>,
) -> (StatusCode, Json<ActionResult>) {
    let mut args: BTreeMap<String, String> = body
        .map(|Json(b)| {
            b.into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k, v)
                })
                .collect()
        })
        .unwrap_or_default();
    args.insert("device_id".into(), device);
    let (tx, rx) = tokio::sync::oneshot::channel();
    api.peer
        .command(move |p, now| {
            let _ = tx.send(p.trigger(now, &action, &args));
        })
        .await;
    match rx.await {
        Ok(Ok(())) => (
            StatusCode::OK,
            Json(ActionResult {
                ok: true,
                error: None,
            }),
        ),
        Ok(Err(e)) => (
            StatusCode::BAD_REQUEST,
            Json(ActionResult {
                ok: false,
                error: Some(e),
            }),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(ActionResult {
                ok: false,
                error: Some("the platform has stopped".into()),
            }),
        ),
    }
}

fn router(api: Shared) -> Router {
    use crate::proto::gb28181::platform::{ACTIONS, MEDIA_ACTIONS};
    Router::new()
        .route(
            "/devices",
            get(|State(a): State<Shared>| async move {
                Json(a.state.lock().unwrap_or_else(|e| e.into_inner()).devices())
            }),
        )
        .route(
            "/events",
            get(
                |State(a): State<Shared>, Query(q): Query<Since>| async move {
                    Json(
                        a.state
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .events_since(q.since),
                    )
                },
            ),
        )
        .route(
            "/sessions",
            get(|State(a): State<Shared>| async move { Json(sessions(&a.peer.sessions)) }),
        )
        .route(
            "/actions",
            get(|| async {
                Json(
                    ACTIONS
                        .iter()
                        .chain(MEDIA_ACTIONS)
                        .copied()
                        .collect::<Vec<_>>(),
                )
            }),
        )
        .route("/devices/{id}/{action}", post(act))
        .with_state(api)
}

/// Log lines go to standard error as `time LEVEL device=ID text`;
/// `RUST_LOG`-style filtering is left out: every event is logged at info or
/// warn, keepalives at debug (shown with `--verbose`).
pub fn init_logging(verbose: bool) {
    let _ = tracing_subscriber::fmt()
        .with_max_level(if verbose { Level::DEBUG } else { Level::INFO })
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

/// Run the lab platform until `stop` fires: log every event, keep the
/// device table, and serve the control API on `control` when given.
/// Hands the peer back for a clean stop.
pub async fn run(
    mut h: PeerHandle<Platform>,
    control: Option<SocketAddr>,
    stop: impl std::future::Future<Output = ()>,
) -> Result<PeerHandle<Platform>> {
    let state = Arc::new(Mutex::new(LabState::default()));
    let (_, closed) = tokio::sync::mpsc::unbounded_channel();
    let mut events = std::mem::replace(&mut h.events, closed);
    let peer = Arc::new(h);
    let server = match control {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("control API: binding {addr}"))?;
            tracing::info!(
                "control API on http://{}/ (GET /devices, /events, /sessions; POST /devices/ID/ACTION)",
                listener.local_addr()?
            );
            let app = router(Arc::new(Api {
                state: state.clone(),
                peer: peer.clone(),
            }));
            Some(tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            }))
        }
        None => None,
    };
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            e = events.recv() => match e {
                Some(e) => state.lock().unwrap_or_else(|p| p.into_inner()).record(&e, SystemTime::now()),
                None => break,
            },
        }
    }
    if let Some(s) = server {
        s.abort();
        let _ = s.await;
    }
    let mut h = Arc::try_unwrap(peer)
        .map_err(|_| anyhow::anyhow!("control API still holds the platform"))?;
    h.events = events;
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_table_follows_registration_keepalive_and_offline() {
        let mut s = LabState::default();
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let id = "34020000001320000001".to_string();
        s.record(
            &PlatformEvent::Registered {
                device_id: id.clone(),
                from: "127.0.0.1:5061".parse().unwrap(),
                expires: 3600,
                refresh: false,
            },
            t,
        );
        s.record(
            &PlatformEvent::Keepalive {
                device_id: id.clone(),
                status: Some("OK".into()),
                findings: vec![],
            },
            t,
        );
        let d = &s.devices()[0];
        assert!(d.registered && d.online);
        assert_eq!(d.keepalives, 1);
        assert_eq!(d.addr.as_deref(), Some("127.0.0.1:5061"));
        assert_eq!(d.last_status.as_deref(), Some("OK"));
        assert!(d.last_keepalive.is_some());
        s.record(
            &PlatformEvent::Offline {
                device_id: id.clone(),
            },
            t,
        );
        assert!(!s.devices()[0].online);
        assert!(s.devices()[0].registered);
        let ev = s.events_since(1);
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[1].text, "offline: keepalives missed");
        assert_eq!(ev[1].level, "WARN");
    }

    #[test]
    fn event_log_is_bounded() {
        let mut s = LabState::default();
        for _ in 0..EVENT_LOG + 10 {
            s.record(
                &PlatformEvent::Unregistered {
                    device_id: "x".into(),
                },
                SystemTime::now(),
            );
        }
        let ev = s.events_since(0);
        assert_eq!(ev.len(), EVENT_LOG);
        assert_eq!(ev[0].seq, 11);
    }
}
