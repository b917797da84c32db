//! Runs a sans-IO SIP state machine on an [`Endpoint`]: sends what it
//! transmits, feeds it what arrives, wakes it at its timeouts, and applies
//! commands sent through the control channel. Dropping the control sender
//! stops the loop.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::clock::Clock;
use super::Endpoint;
use crate::proto::gb28181::device::{Device, DeviceEvent};
use crate::proto::gb28181::platform::{Platform, PlatformEvent};
use crate::proto::sip::SipMessage;
use crate::proto::{Now, Transmit};

/// What the driver needs from a state machine.
pub trait SipMachine: Send + 'static {
    type Event: std::fmt::Debug + Send + 'static;
    fn on_message(&mut self, now: Now, from: SocketAddr, msg: &SipMessage);
    /// Bytes that arrived but do not parse as SIP; dropped by default.
    fn on_unparseable(&mut self, _now: Now, _from: SocketAddr, _bytes: &[u8]) {}
    fn on_timeout(&mut self, now: Now);
    fn next_timeout(&self) -> Option<Instant>;
    fn next_transmit(&mut self) -> Option<Transmit>;
    fn next_event(&mut self) -> Option<Self::Event>;
}

/// Implement [`SipMachine`] for a state machine whose inherent methods
/// follow the house names: `handle_timeout`, `poll_timeout`,
/// `poll_transmit`, `poll_event`, and the given method for received
/// messages (`handle_message(now, from, msg)` or `handle_message_from`).
/// An optional `unparseable => method` forwards non-SIP datagrams.
#[macro_export]
macro_rules! sip_machine {
    ($ty:ty, $event:ty, $on_message:ident $(, unparseable => $on_garbage:ident)?) => {
        impl $crate::transport::driver::SipMachine for $ty {
            type Event = $event;
            fn on_message(
                &mut self,
                now: $crate::proto::Now,
                from: ::std::net::SocketAddr,
                msg: &$crate::proto::sip::SipMessage,
            ) {
                self.$on_message(now, from, msg)
            }
            $(
            fn on_unparseable(&mut self, now: $crate::proto::Now, from: ::std::net::SocketAddr, bytes: &[u8]) {
                self.$on_garbage(now, from, bytes)
            }
            )?
            fn on_timeout(&mut self, now: $crate::proto::Now) {
                self.handle_timeout(now)
            }
            fn next_timeout(&self) -> Option<::std::time::Instant> {
                self.poll_timeout()
            }
            fn next_transmit(&mut self) -> Option<$crate::proto::Transmit> {
                self.poll_transmit()
            }
            fn next_event(&mut self) -> Option<$event> {
                self.poll_event()
            }
        }
    };
}

sip_machine!(Device, DeviceEvent, handle_message_from);
sip_machine!(Platform, PlatformEvent, handle_message, unparseable => handle_unparseable);

/// A command applied to the machine inside the loop.
pub type Command<M> = Box<dyn FnOnce(&mut M, Now) + Send>;

/// How often the loop looks at its control channel when nothing else wakes it.
const POLL: Duration = Duration::from_millis(20);

pub async fn run<M: SipMachine>(
    mut m: M,
    mut ep: Endpoint,
    clock: impl Clock,
    mut ctl: mpsc::Receiver<Command<M>>,
    events: mpsc::UnboundedSender<M::Event>,
) -> anyhow::Result<M> {
    loop {
        // Events first: an observer learns of a state change no later than
        // the peer sees the message that follows from it.
        while let Some(e) = m.next_event() {
            let _ = events.send(e);
        }
        while let Some(t) = m.next_transmit() {
            // A send failure (peer gone) is the peer's problem, not ours.
            let _ = ep.send(Some(t.to), &t.bytes).await;
        }
        let now = clock.now();
        if let Some(t) = m.next_timeout() {
            if t <= now.mono {
                m.on_timeout(now);
                continue;
            }
        }
        let wake = m
            .next_timeout()
            .unwrap_or(now.mono + POLL)
            .min(now.mono + POLL);
        match ctl.try_recv() {
            Ok(cmd) => {
                cmd(&mut m, clock.now());
                continue;
            }
            Err(mpsc::error::TryRecvError::Disconnected) => return Ok(m),
            Err(mpsc::error::TryRecvError::Empty) => {}
        }
        match ep.recv(wake).await {
            Ok(Some(inc)) => match SipMessage::parse(&inc.raw) {
                Ok(p) => m.on_message(clock.now(), inc.from, &p.message),
                Err(_) => m.on_unparseable(clock.now(), inc.from, &inc.raw),
            },
            Ok(None) => {}
            // Stream closed: keep the machine running on its timers so a
            // device notices and retries; stop when told to.
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}
