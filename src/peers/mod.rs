//! Built-in reference peers: a reference camera (the [`Device`] state
//! machine) and a reference platform (the [`Platform`] state machine), run
//! on real sockets by [`crate::transport::driver`]. `camcert run` starts one
//! per case when no `--target` is given; `camcert serve` runs one in the
//! foreground.

pub mod session;

use std::net::SocketAddr;

use anyhow::Result;
use tokio::sync::mpsc;

use crate::proto::gb28181::device::{Device, DeviceConfig};
use crate::proto::gb28181::platform::{Platform, PlatformConfig};
use crate::transport::clock::{Clock, SystemClock};
use crate::transport::driver::{self, Command, SipMachine};
use crate::transport::{Endpoint, PeerAddr, Tap};

/// A running peer. Dropping it stops it.
pub struct PeerHandle<M: SipMachine> {
    ctl: mpsc::Sender<Command<M>>,
    pub events: mpsc::UnboundedReceiver<M::Event>,
    task: tokio::task::JoinHandle<Result<M>>,
    /// The address the peer's socket is bound to.
    pub addr: SocketAddr,
    pub tap: Tap,
}

impl<M: SipMachine> PeerHandle<M> {
    /// Run `f` on the machine inside its loop.
    pub async fn command(&self, f: impl FnOnce(&mut M, crate::proto::Now) + Send + 'static) {
        let _ = self.ctl.send(Box::new(f)).await;
    }

    /// Stop the loop and hand back the machine.
    pub async fn stop(self) -> Result<M> {
        drop(self.ctl);
        self.task.await?
    }
}

fn spawn<M: SipMachine>(m: M, ep: Endpoint) -> PeerHandle<M> {
    let (ctl, ctl_rx) = mpsc::channel(16);
    let (ev_tx, events) = mpsc::unbounded_channel();
    let addr = ep.local_addr();
    let tap = ep.tap.clone();
    let task = tokio::spawn(driver::run(m, ep, SystemClock, ctl_rx, ev_tx));
    PeerHandle {
        ctl,
        events,
        task,
        addr,
        tap,
    }
}

/// Start the reference camera registering to `cfg.server` over `cfg.transport`,
/// from an ephemeral port on `bind_ip`.
pub async fn start_camera(
    mut cfg: DeviceConfig,
    bind_ip: std::net::IpAddr,
) -> Result<PeerHandle<Device>> {
    let server = PeerAddr {
        transport: cfg.transport,
        addr: cfg.server,
    };
    let ep = Endpoint::connect(server, SocketAddr::new(bind_ip, 0)).await?;
    cfg.local = ep.local_addr();
    let mut device = Device::new(cfg);
    device.start(SystemClock.now());
    Ok(spawn(device, ep))
}

/// Start the reference platform listening on `listen`. A lower platform
/// (with `cfg.upstream`) starts registering to its upper platform.
pub async fn start_platform(
    mut cfg: PlatformConfig,
    listen: PeerAddr,
) -> Result<PeerHandle<Platform>> {
    let ep = Endpoint::bind(listen.transport, listen.addr).await?;
    cfg.local = ep.local_addr();
    cfg.transport = listen.transport;
    let mut platform = Platform::new(cfg);
    platform.start(SystemClock.now());
    Ok(spawn(platform, ep))
}
