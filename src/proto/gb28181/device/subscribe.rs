//! §订阅与取订 on the device (notifier) side: catalog subscriptions
//! (§目录订阅: "订阅目录后，目录发生变化向订阅者发送通知") and alarm
//! subscriptions (§事件订阅), with NOTIFYs sent in the subscription's
//! dialog (RFC 6665).
//!
//! What is subscribed comes from the body's CmdType (`Catalog`, `Alarm`);
//! without a body, from the Event package name. The spec's own sample
//! subscribes to alarms with `Event: presence;id=xxx`, so the package name
//! is not checked further and is echoed back as sent.
//!
//! Decisions:
//! - A SUBSCRIBE is answered 200 with the granted `Expires` (at most
//!   `max_subscription_expires`), a To tag and a Contact (§订阅格式 "订阅
//!   结果"). No NOTIFY follows at once: GB/T 28181 defines NOTIFY bodies only
//!   for changes and events, so the first NOTIFY is the first event. RFC
//!   6665 §4.2.1.2 wants an immediate NOTIFY; that strict reading is
//!   reported as a finding, not followed.
//! - `Expires: 0` ends the subscription, answered 200 with `Expires: 0`
//!   ("取消订阅结果"), and nothing more is sent for it. RFC 6665 would send
//!   a final NOTIFY with `Subscription-State: terminated`; the spec's flow
//!   shows none, so none is sent.
//! - A subscription not refreshed before its expiry ends silently.
//! - A SUBSCRIBE whose To tag names no live subscription gets 481.

use std::net::SocketAddr;
use std::time::Instant;

use super::txn::Purpose;
use super::{Device, DeviceEvent};
use crate::proto::gb28181::manscdp::{self, AlarmQuery, Body, CmdType, Message};
use crate::proto::gb28181::message::{build_request, with_body, RequestParams};
use crate::proto::gb28181::register::host_port;
use crate::proto::sip::{self, NameAddr, SipMessage};
use crate::proto::Now;

/// What a subscription is for.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum SubKind {
    Catalog,
    /// Alarms passing this filter.
    Alarm(AlarmQuery),
}

impl SubKind {
    fn name(&self) -> &'static str {
        match self {
            SubKind::Catalog => "Catalog",
            SubKind::Alarm(_) => "Alarm",
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Subscription {
    call_id: String,
    /// The subscriber's tag (From of its SUBSCRIBE).
    remote_tag: String,
    /// Our tag (To of the 200).
    local_tag: String,
    /// The subscriber's ID (From user).
    subscriber: String,
    /// Where NOTIFYs go: the Contact of the SUBSCRIBE, else its From URI.
    target_uri: String,
    addr: SocketAddr,
    /// The Event header as the subscriber sent it.
    event: String,
    kind: SubKind,
    expires_at: Instant,
    cseq: u32,
}

#[derive(Debug, Default)]
pub(super) struct Subscriptions(Vec<Subscription>);

impl Subscriptions {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.0.iter().map(|s| s.expires_at).min()
    }

    /// Remove expired subscriptions, returning their kinds (unless `never`).
    pub fn expire(&mut self, now: Instant, never: bool) -> Vec<String> {
        if never {
            return Vec::new();
        }
        let mut gone = Vec::new();
        self.0.retain(|s| {
            let keep = s.expires_at > now;
            if !keep {
                gone.push(s.kind.name().to_string());
            }
            keep
        });
        gone
    }

    pub fn end(
        &mut self,
        call_id: &str,
        reason: &str,
        events: &mut std::collections::VecDeque<DeviceEvent>,
    ) {
        self.0.retain(|s| {
            let keep = s.call_id != call_id;
            if !keep {
                events.push_back(DeviceEvent::SubscriptionEnded {
                    event: s.kind.name().into(),
                    reason: reason.into(),
                });
            }
            keep
        });
    }

    fn find(&self, call_id: &str, remote_tag: &str) -> Option<usize> {
        self.0
            .iter()
            .position(|s| s.call_id == call_id && s.remote_tag == remote_tag)
    }
}

/// Default subscription duration when the SUBSCRIBE has no Expires.
const DEFAULT_EXPIRES: u32 = 3600;

impl Device {
    pub(super) fn on_subscribe(&mut self, now: Now, from: SocketAddr, req: &SipMessage) {
        if self.cfg.faults.no_subscribe {
            return self.respond(now, from, req, 489, &[]);
        }
        let from_hdr = req.headers.get("From").and_then(NameAddr::parse);
        let (Some(call_id), Some(f)) = (req.call_id(), from_hdr) else {
            return self.respond(now, from, req, 400, &[]);
        };
        let Some(remote_tag) = f.tag().map(str::to_string) else {
            return self.respond(now, from, req, 400, &[]);
        };
        let to_tag = req
            .headers
            .get("To")
            .and_then(NameAddr::parse)
            .and_then(|t| t.tag().map(str::to_string));
        let existing = self.subs.find(call_id, &remote_tag);
        if let (Some(t), None) = (&to_tag, existing) {
            // In-dialog SUBSCRIBE for a subscription we do not have.
            let t = t.clone();
            return self.respond_tagged(now, from, req, 481, &t, &[]);
        }
        let requested: u32 = req
            .headers
            .get("Expires")
            .and_then(|e| e.trim().parse().ok())
            .unwrap_or(DEFAULT_EXPIRES);
        let event = req.headers.get("Event").unwrap_or("").trim().to_string();
        let body = (!req.body.is_empty())
            .then(|| Message::decode(&req.body).ok())
            .flatten()
            .map(|d| d.message);
        if let Some(id) = body.as_ref().and_then(|m| m.device_id.as_deref()) {
            if !self.is_target(id) {
                return self.respond(now, from, req, 404, &[]);
            }
        }
        let kind = match body.as_ref().map(|m| (&m.cmd_type, &m.body)) {
            Some((Some(CmdType::Catalog), _)) => Some(SubKind::Catalog),
            Some((Some(CmdType::Alarm), Body::AlarmQuery(q))) => Some(SubKind::Alarm(q.clone())),
            Some(_) => None,
            None => match event.split(';').next().unwrap_or("").trim() {
                p if p.eq_ignore_ascii_case("Catalog") => Some(SubKind::Catalog),
                p if p.eq_ignore_ascii_case("Alarm") => Some(SubKind::Alarm(AlarmQuery::default())),
                _ => None,
            },
        };
        let echo_event = |e: &str| -> Vec<(&str, String)> {
            if e.is_empty() {
                Vec::new()
            } else {
                vec![("Event", e.to_string())]
            }
        };
        if requested == 0 {
            let tag = match existing {
                Some(i) => {
                    let s = &self.subs.0[i];
                    let tag = s.local_tag.clone();
                    if !self.cfg.faults.notify_after_unsubscribe {
                        let call_id = s.call_id.clone();
                        self.subs.end(&call_id, "unsubscribed", &mut self.events);
                    }
                    tag
                }
                None => to_tag.unwrap_or_else(|| sip::new_tag(&mut self.rng)),
            };
            let mut h = echo_event(&event);
            h.push(("Expires", "0".into()));
            return self.respond_tagged(now, from, req, 200, &tag, &h);
        }
        let granted = requested.min(self.cfg.max_subscription_expires).max(1);
        let expires_at =
            now.mono + self.protocol(std::time::Duration::from_secs(u64::from(granted)));
        let tag = match existing {
            Some(i) => {
                let s = &mut self.subs.0[i];
                s.expires_at = expires_at;
                s.addr = from;
                if let Some(k) = kind {
                    s.kind = k;
                }
                s.local_tag.clone()
            }
            None => {
                let Some(kind) = kind else {
                    return self.respond(now, from, req, 489, &[]);
                };
                let tag = sip::new_tag(&mut self.rng);
                let target_uri = req
                    .headers
                    .get("Contact")
                    .and_then(NameAddr::parse)
                    .map(|c| c.uri.to_string())
                    .unwrap_or_else(|| f.uri.to_string());
                self.subs.0.push(Subscription {
                    call_id: call_id.to_string(),
                    remote_tag,
                    local_tag: tag.clone(),
                    subscriber: f.uri.user.clone().unwrap_or_default(),
                    target_uri,
                    addr: from,
                    event: if event.is_empty() {
                        kind.name().to_string()
                    } else {
                        event.clone()
                    },
                    kind: kind.clone(),
                    expires_at,
                    cseq: 0,
                });
                self.events.push_back(DeviceEvent::Subscribed {
                    event: kind.name().into(),
                    expires: granted,
                });
                tag
            }
        };
        let mut h = echo_event(&event);
        if !self.cfg.faults.subscribe_no_expires {
            h.push(("Expires", granted.to_string()));
        }
        h.push((
            "Contact",
            format!("<sip:{}@{}>", self.cfg.device_id, host_port(self.cfg.local)),
        ));
        self.respond_tagged(now, from, req, 200, &tag, &h);
    }

    /// Send `m` as a NOTIFY to every subscription `wants`.
    pub(super) fn notify_subscribers(
        &mut self,
        now: Now,
        m: &Message,
        wants: impl Fn(&SubKind) -> bool,
    ) {
        let body = self.encode(m);
        let outside = self.cfg.faults.notify_outside_dialog;
        for i in 0..self.subs.0.len() {
            if !wants(&self.subs.0[i].kind) {
                continue;
            }
            let s = &mut self.subs.0[i];
            s.cseq += 1;
            let remaining = s
                .expires_at
                .saturating_duration_since(now.mono)
                .as_secs_f64()
                / self.cfg.time_scale.max(1e-9);
            let s = s.clone();
            let (call_id, from_tag, to_tag) = if outside {
                (
                    sip::new_call_id(&mut self.rng),
                    sip::new_tag(&mut self.rng),
                    None,
                )
            } else {
                (
                    s.call_id.clone(),
                    s.local_tag.clone(),
                    Some(s.remote_tag.as_str()),
                )
            };
            let branch = sip::new_branch(&mut self.rng);
            let mut n = build_request(&RequestParams {
                method: "NOTIFY",
                from_id: &self.cfg.device_id,
                to_id: &s.subscriber,
                domain: &self.cfg.domain,
                local: self.cfg.local,
                remote: s.addr,
                transport: self.cfg.transport,
                call_id: &call_id,
                from_tag: &from_tag,
                to_tag,
                cseq: s.cseq,
                branch: &branch,
                user_agent: &self.cfg.user_agent,
            });
            if let sip::StartLine::Request { uri, .. } = &mut n.start {
                *uri = s.target_uri.clone();
            }
            n.headers.push("Event", s.event.clone());
            n.headers.push(
                "Subscription-State",
                format!("active;expires={}", remaining.round() as u64),
            );
            n.headers.push(
                "Contact",
                format!("<sip:{}@{}>", self.cfg.device_id, host_port(self.cfg.local)),
            );
            let n = with_body(n, manscdp::CONTENT_TYPE, body.clone());
            self.start_txn(
                now,
                n,
                s.addr,
                branch,
                Purpose::Notify {
                    call_id: s.call_id.clone(),
                },
            );
        }
    }
}
