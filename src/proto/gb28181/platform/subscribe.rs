//! The platform as subscriber (§订阅与取订): catalog and alarm
//! subscriptions, their refresh and end, and the NOTIFYs that arrive in
//! them or, from a lower platform, outside them (cascade 共享设备状态变更通知).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

use super::queries::{alarm_query, secs, window};
use super::transaction::Purpose;
use super::{from_user, Channel, Platform, PlatformEvent};
use crate::proto::gb28181::manscdp::{Body, CatalogEvent, CatalogQuery, Message, Root};
use crate::proto::gb28181::register::host_port;
use crate::proto::sip::{self, NameAddr, SipMessage};
use crate::proto::Now;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Catalog,
    Alarm,
}

impl Kind {
    /// The Event package. 目录订阅 uses `Catalog`; the 订阅格式 alarm
    /// sample uses `Event: presence;id=xxx`.
    fn package(self) -> &'static str {
        match self {
            Kind::Catalog => "Catalog",
            Kind::Alarm => "presence",
        }
    }
}

/// One subscription dialog this platform holds as subscriber.
#[derive(Debug, Clone)]
pub(super) struct Subscription {
    pub id: u32,
    pub device_id: String,
    pub kind: Kind,
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: Option<String>,
    pub cseq: u32,
    pub dest: SocketAddr,
    pub query: Message,
    /// Expires asked for.
    pub requested: u32,
    pub refresh_at: Option<Instant>,
    pub expires_at: Option<Instant>,
    /// Ended before the notifier confirmed it: end it once it does.
    pub end_when_confirmed: bool,
}

impl Subscription {
    pub fn wake(&self) -> Option<Instant> {
        [self.refresh_at, self.expires_at]
            .into_iter()
            .flatten()
            .min()
    }

    fn event(&self) -> String {
        format!("{};id={}", self.kind.package(), self.id)
    }
}

impl Platform {
    pub(super) fn subscribe_trigger(
        &mut self,
        now: Now,
        action: &str,
        args: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        let target = match args.get("device_id") {
            Some(d) => d.clone(),
            None => self
                .last_registered
                .clone()
                .ok_or("no device is registered and no device_id was given")?,
        };
        if action == "unsubscribe" {
            let kind = match args.get("event").map(String::as_str) {
                None | Some("catalog" | "Catalog") => Kind::Catalog,
                Some("alarm" | "presence") => Kind::Alarm,
                Some(o) => return Err(format!("event {o:?}: catalog or alarm")),
            };
            let id = self
                .subscriptions
                .iter()
                .find(|s| s.device_id == target && s.kind == kind)
                .map(|s| s.id)
                .ok_or_else(|| format!("no {} subscription to {target}", kind.package()))?;
            let s = self
                .subscriptions
                .iter_mut()
                .find(|s| s.id == id)
                .expect("found above");
            if s.expires_at.is_none() {
                // No 200 yet: the dialog has no remote tag to end it in.
                s.end_when_confirmed = true;
            } else {
                self.send_subscribe(now, id, 0);
            }
            return Ok(());
        }
        let (dest, _) = self.route(&target).ok_or_else(|| {
            format!("{target} is neither a registered device nor a channel of one")
        })?;
        let expires = match args.get("expires") {
            Some(e) => e
                .trim()
                .parse()
                .map_err(|_| format!("expires {e:?} is not a number"))?,
            None => self.cfg.subscribe_expires,
        };
        let sn = self.next_sn();
        let (kind, query) = if action == "subscribe-catalog" {
            (
                Kind::Catalog,
                Message::new(
                    sn,
                    target.clone(),
                    Body::CatalogQuery(CatalogQuery::default()),
                ),
            )
        } else {
            let (start, end) = window(now, 1);
            (Kind::Alarm, alarm_query(sn, &target, start, end))
        };
        self.next_subscription += 1;
        let sub = Subscription {
            id: self.next_subscription,
            device_id: target,
            kind,
            call_id: sip::new_call_id(&mut self.rng),
            local_tag: sip::new_tag(&mut self.rng),
            remote_tag: None,
            cseq: 0,
            dest,
            query,
            requested: expires,
            refresh_at: None,
            expires_at: None,
            end_when_confirmed: false,
        };
        let id = sub.id;
        self.subscriptions.push(sub);
        self.send_subscribe(now, id, expires);
        Ok(())
    }

    /// SUBSCRIBE in the dialog of subscription `id` (the first one opens it).
    fn send_subscribe(&mut self, now: Now, id: u32, expires: u32) {
        let Some(i) = self.subscriptions.iter().position(|s| s.id == id) else {
            return;
        };
        self.subscriptions[i].cseq += 1;
        let s = self.subscriptions[i].clone();
        let mut m = self.request_in(
            "SUBSCRIBE",
            &s.device_id,
            s.dest,
            &s.call_id,
            &s.local_tag,
            s.remote_tag.as_deref(),
            s.cseq,
        );
        m.headers.push(
            "Contact",
            format!(
                "<sip:{}@{}>",
                self.cfg.platform_id,
                host_port(self.cfg.local)
            ),
        );
        m.headers.push("Event", s.event());
        if !self.cfg.faults.subscribe_no_expires {
            m.headers.push("Expires", expires.to_string());
        }
        let m = self.with_manscdp(m, &s.query);
        self.send_request(
            now,
            m,
            s.dest,
            &s.device_id,
            Purpose::Subscribe { id, expires },
        );
    }

    pub(super) fn drop_subscription(&mut self, id: u32) {
        self.subscriptions.retain(|s| s.id != id);
    }

    /// The final answer to a SUBSCRIBE.
    pub(super) fn on_subscribe_answer(&mut self, now: Now, id: u32, asked: u32, r: &SipMessage) {
        let Some(i) = self.subscriptions.iter().position(|s| s.id == id) else {
            return;
        };
        let code = r.status().unwrap_or(0);
        let s = &mut self.subscriptions[i];
        let (device_id, event) = (s.device_id.clone(), s.kind.package().to_string());
        if !(200..300).contains(&code) {
            self.subscriptions.remove(i);
            self.events.push_back(PlatformEvent::RequestFailed {
                target: device_id,
                method: "SUBSCRIBE".into(),
                status: Some(code),
            });
            return;
        }
        // RFC 6665 §4.1.2.1: the notifier may shorten the expiry in its 200.
        let granted = r
            .headers
            .get("Expires")
            .and_then(|e| e.trim().parse::<u32>().ok())
            .unwrap_or(asked)
            .min(asked);
        if granted == 0 {
            self.subscriptions.remove(i);
            self.events
                .push_back(PlatformEvent::SubscriptionEnded { device_id, event });
            return;
        }
        if s.remote_tag.is_none() {
            s.remote_tag = r
                .headers
                .get("To")
                .and_then(NameAddr::parse)
                .and_then(|n| n.tag().map(str::to_string));
        }
        let scale = self.cfg.time_scale;
        s.expires_at = Some(now.mono + crate::proto::scaled(secs(granted), scale));
        s.refresh_at = Some(now.mono + crate::proto::scaled(secs(granted) / 2, scale));
        let end = std::mem::take(&mut s.end_when_confirmed);
        self.events.push_back(PlatformEvent::Subscribed {
            device_id,
            event,
            expires: granted,
        });
        if end {
            self.send_subscribe(now, id, 0);
        }
    }

    pub(super) fn tick_subscriptions(&mut self, now: Now) {
        let mut refresh = Vec::new();
        let mut ended = Vec::new();
        for s in &mut self.subscriptions {
            if s.expires_at.is_some_and(|t| t <= now.mono) {
                ended.push(s.id);
            } else if s.refresh_at.is_some_and(|t| t <= now.mono) {
                s.refresh_at = None;
                refresh.push((s.id, s.requested));
            }
        }
        for id in ended {
            if let Some(s) = self.subscriptions.iter().find(|s| s.id == id) {
                self.events.push_back(PlatformEvent::SubscriptionEnded {
                    device_id: s.device_id.clone(),
                    event: s.kind.package().into(),
                });
            }
            self.drop_subscription(id);
        }
        for (id, expires) in refresh {
            self.send_subscribe(now, id, expires);
        }
    }

    /// §订阅与取订: "事件观察者应向事件源发送事件收到的确认消息" — 200 to
    /// every NOTIFY in a subscription. A lower platform's status NOTIFY
    /// (cascade 共享设备状态变更通知) comes outside any subscription and is
    /// answered 200 too; other NOTIFYs get 481 (RFC 6665 §4.1.3).
    pub(super) fn handle_notify(&mut self, _now: Now, from: SocketAddr, msg: &SipMessage) {
        let sender = from_user(msg).unwrap_or_default();
        let body = self.decode_manscdp(&msg.body).ok().map(|d| {
            self.keep_findings(&sender, &d.findings);
            d.message
        });
        let event = msg.headers.get("Event").map(str::to_string);
        let cmd = body
            .as_ref()
            .and_then(|b| b.cmd_type.as_ref().map(|c| c.as_str().to_string()));
        let sub = self
            .subscriptions
            .iter()
            .position(|s| Some(s.call_id.as_str()) == msg.call_id());
        let owner = match sub {
            Some(i) => {
                let s = &mut self.subscriptions[i];
                if s.remote_tag.is_none() {
                    s.remote_tag = from_tag(msg);
                }
                let owner = s.device_id.clone();
                let terminated = msg
                    .headers
                    .get("Subscription-State")
                    .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("terminated"));
                if terminated {
                    let (id, ev) = (s.id, s.kind.package().to_string());
                    self.drop_subscription(id);
                    self.events.push_back(PlatformEvent::SubscriptionEnded {
                        device_id: owner.clone(),
                        event: ev,
                    });
                }
                owner
            }
            None if self.registrations.contains_key(&sender) => sender.clone(),
            None => return self.respond(from, msg, 481),
        };
        if !self.cfg.faults.notify_no_200 {
            self.respond(from, msg, 200);
        }
        if let Some(b) = &body {
            self.learn_catalog_changes(&owner, b);
        }
        self.events.push_back(PlatformEvent::Notified {
            device_id: sender,
            event,
            cmd,
        });
    }

    /// Apply a catalog notification's item events to the known channels.
    fn learn_catalog_changes(&mut self, owner: &str, m: &Message) {
        let (Root::Notify, Body::CatalogNotify(list)) = (m.root, &m.body) else {
            return;
        };
        for it in list.items() {
            let Some(id) = &it.device_id else { continue };
            if id == owner {
                continue;
            }
            match &it.event {
                Some(CatalogEvent::Delete) => {
                    self.channels.remove(id);
                }
                ev => {
                    let c = self.channels.entry(id.clone()).or_insert_with(|| Channel {
                        owner: owner.to_string(),
                        name: None,
                        status: None,
                    });
                    if it.name.is_some() {
                        c.name = it.name.clone();
                    }
                    c.status = match ev {
                        Some(CatalogEvent::On) => Some("ON".into()),
                        Some(CatalogEvent::Off) => Some("OFF".into()),
                        _ => it.status.as_ref().map(|s| s.as_str().to_string()),
                    };
                }
            }
        }
    }
}

fn from_tag(m: &SipMessage) -> Option<String> {
    m.headers
        .get("From")
        .and_then(NameAddr::parse)
        .and_then(|n| n.tag().map(str::to_string))
}
