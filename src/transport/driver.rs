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

/// Messages already waiting that are taken before a command.
const MAX_AHEAD_OF_COMMAND: usize = 64;

fn deliver<M: SipMachine>(m: &mut M, clock: &impl Clock, inc: &super::Incoming) {
    match SipMessage::parse(&inc.raw) {
        Ok(p) => m.on_message(clock.now(), inc.from, &p.message),
        Err(_) => m.on_unparseable(clock.now(), inc.from, &inc.raw),
    }
}

/// Runs `m` until the control sender is dropped, then hands it back.
///
/// The loop sleeps until something happens: a command, a message from the
/// endpoint, or the machine's next deadline ([`SipMachine::next_timeout`];
/// none means no timer at all). There is no fixed tick. Sends only queue
/// (see [`Endpoint::send`]), so a peer that does not read never holds up
/// the answers to the others.
pub async fn run<M: SipMachine>(
    mut m: M,
    mut ep: Endpoint,
    clock: impl Clock,
    mut ctl: mpsc::Receiver<Command<M>>,
    events: mpsc::UnboundedSender<M::Event>,
) -> anyhow::Result<M> {
    // A client whose stream has closed has nothing more to receive; the
    // machine keeps running on its timers and commands.
    let mut receiving = true;
    loop {
        // Events first: an observer learns of a state change no later than
        // the peer sees the message that follows from it.
        while let Some(e) = m.next_event() {
            let _ = events.send(e);
        }
        while let Some(t) = m.next_transmit() {
            // A send failure (peer gone, or not reading and dropped) is the
            // peer's problem, not ours.
            let _ = ep.send(Some(t.to), &t.bytes).await;
        }
        let now = clock.now();
        let wake = m.next_timeout();
        if let Some(t) = wake {
            if t <= now.mono {
                m.on_timeout(now);
                continue;
            }
        }
        // Commands that are waiting go in now, so a flood on the endpoint
        // cannot keep them out.
        match ctl.try_recv() {
            Ok(cmd) => {
                cmd(&mut m, clock.now());
                continue;
            }
            Err(mpsc::error::TryRecvError::Disconnected) => return Ok(m),
            Err(mpsc::error::TryRecvError::Empty) => {}
        }
        let sleep = async {
            match wake {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        // When a message and a command are both ready, the message goes
        // first: the peer sent it before whoever sent the command saw it.
        tokio::select! {
            biased;
            r = ep.recv_next(), if receiving => match r {
                Ok(inc) => deliver(&mut m, &clock, &inc),
                // A stream that closed is over; a datagram socket error
                // (an ICMP report) is not.
                Err(_) if ep.transport() == crate::proto::Transport::Tcp => receiving = false,
                Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            },
            cmd = ctl.recv() => match cmd {
                Some(cmd) => {
                    // Whoever sent the command may have reacted to a message
                    // of ours whose answer is already here but not yet seen
                    // by the runtime: let it look, and take those first.
                    tokio::task::yield_now().await;
                    for _ in 0..MAX_AHEAD_OF_COMMAND {
                        if !receiving {
                            break;
                        }
                        match tokio::time::timeout(Duration::ZERO, ep.recv_next()).await {
                            Ok(Ok(inc)) => deliver(&mut m, &clock, &inc),
                            _ => break,
                        }
                    }
                    cmd(&mut m, clock.now())
                }
                None => return Ok(m),
            },
            () = sleep => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Transport;
    use crate::transport::clock::SystemClock;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    /// A machine that counts how often the loop looks at it, takes one
    /// deadline, and answers every request with `200`.
    struct Probe {
        looks: Arc<AtomicUsize>,
        deadline: Option<Instant>,
        fired: Vec<Instant>,
        out: Vec<Transmit>,
    }

    impl SipMachine for Probe {
        type Event = ();
        fn on_message(&mut self, _now: Now, from: SocketAddr, _msg: &SipMessage) {
            self.out.push(Transmit {
                to: from,
                bytes: b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(),
            });
        }
        fn on_timeout(&mut self, now: Now) {
            if self.deadline.is_some_and(|d| d <= now.mono) {
                self.deadline = None;
                self.fired.push(now.mono);
            }
        }
        fn next_timeout(&self) -> Option<Instant> {
            self.looks.fetch_add(1, Ordering::Relaxed);
            self.deadline
        }
        fn next_transmit(&mut self) -> Option<Transmit> {
            self.out.pop()
        }
        fn next_event(&mut self) -> Option<()> {
            None
        }
    }

    fn probe() -> (Probe, Arc<AtomicUsize>) {
        let looks = Arc::new(AtomicUsize::new(0));
        let p = Probe {
            looks: looks.clone(),
            deadline: None,
            fired: vec![],
            out: vec![],
        };
        (p, looks)
    }

    #[tokio::test]
    async fn idle_loop_sleeps_instead_of_ticking() {
        let ep = Endpoint::bind(Transport::Udp, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let (m, looks) = probe();
        let (ctl, ctl_rx) = mpsc::channel::<Command<Probe>>(4);
        let (ev, _ev_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(m, ep, SystemClock, ctl_rx, ev));
        tokio::time::sleep(Duration::from_millis(500)).await;
        // A 20 ms tick would have looked 25 times.
        let n = looks.load(Ordering::Relaxed);
        assert!(
            n <= 3,
            "the loop woke {n} times in 500 ms with nothing to do"
        );
        // A command still gets in at once.
        let t0 = Instant::now();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        ctl.send(Box::new(move |_m: &mut Probe, _now| {
            let _ = done_tx.send(Instant::now());
        }))
        .await
        .unwrap();
        let applied = tokio::time::timeout(Duration::from_secs(1), done_rx)
            .await
            .unwrap()
            .unwrap();
        assert!(applied - t0 < Duration::from_millis(50));
        drop(ctl);
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn wakes_at_the_machine_deadline_and_for_datagrams() {
        let ep = Endpoint::bind(Transport::Udp, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = ep.local_addr();
        let (mut m, looks) = probe();
        let due = Instant::now() + Duration::from_millis(300);
        m.deadline = Some(due);
        let (ctl, ctl_rx) = mpsc::channel::<Command<Probe>>(4);
        let (ev, _ev_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(m, ep, SystemClock, ctl_rx, ev));
        // A datagram is answered at once, long before the deadline.
        let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let t0 = Instant::now();
        client
            .send_to(
                b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n",
                addr,
            )
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let (n, _) = tokio::time::timeout(Duration::from_secs(1), client.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(buf[..n].starts_with(b"SIP/2.0 200"));
        assert!(t0.elapsed() < Duration::from_millis(100));
        tokio::time::sleep(Duration::from_millis(450)).await;
        drop(ctl);
        let m = task.await.unwrap().unwrap();
        assert_eq!(m.fired.len(), 1);
        let late = m.fired[0] - due;
        assert!(late < Duration::from_millis(50), "fired {late:?} late");
        let n = looks.load(Ordering::Relaxed);
        assert!(
            n <= 8,
            "the loop woke {n} times for one datagram and one deadline"
        );
    }
}
