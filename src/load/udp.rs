//! Batched UDP for the fleet's signalling: many datagrams to many
//! destinations in one `sendmmsg` (or one UDP GSO send), and whatever
//! waits on a socket read in one `recvmmsg` (Linux; one datagram a call
//! elsewhere). The sockets are plain non-blocking ones in an epoll set of
//! their own ([`Sockets`]), read when the loop comes round to them rather
//! than whenever a datagram lands. A socket with [`stamp_arrivals`] on
//! also hands back when the kernel took in each datagram, so a reader that
//! comes round on a tick still knows when its answers came.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Datagrams per system call.
pub const BATCH: usize = 64;
/// Datagrams one receive call takes at most.
pub const RECV_BATCH: usize = 32;
/// Room for each received datagram: the largest UDP payload.
const RECV_SIZE: usize = 65_536;
/// Room for each received datagram's control messages (its arrival time).
const CONTROL_SIZE: usize = 64;

/// Have the kernel stamp each datagram `sock` takes in with the time it
/// came (`SO_TIMESTAMPNS`); [`RecvMany::arrival`] reads it back. Whether
/// the socket took the option.
#[cfg(target_os = "linux")]
pub fn stamp_arrivals(sock: &impl std::os::fd::AsRawFd) -> bool {
    let on: libc::c_int = 1;
    // SAFETY: a valid descriptor and a c_int option value of the right size.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            &on as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ) == 0
    }
}

#[cfg(not(target_os = "linux"))]
pub fn stamp_arrivals<T>(_sock: &T) -> bool {
    false
}

/// Hand as many of `out` as the kernel takes in one call; how many it took.
#[cfg(target_os = "linux")]
fn send_some(sock: &impl std::os::fd::AsRawFd, out: &[(SocketAddr, Vec<u8>)]) -> io::Result<usize> {
    let n = out.len().min(BATCH);
    let runs: Vec<std::ops::Range<usize>> = (0..n).map(|k| k..k + 1).collect();
    send_runs(sock, out, &runs)
}

/// One `sendmmsg` of `runs` of `out`, a message per run: a run of one is a
/// plain datagram, a longer one (one destination, one length but maybe
/// the last) a UDP GSO send (`UDP_SEGMENT`). How many runs the kernel
/// took; an error means the first run was refused.
#[cfg(target_os = "linux")]
fn send_runs(
    sock: &impl std::os::fd::AsRawFd,
    out: &[(SocketAddr, Vec<u8>)],
    runs: &[std::ops::Range<usize>],
) -> io::Result<usize> {
    let n = runs.len();
    if n == 0 {
        return Ok(0);
    }
    let mut names: Vec<(libc::sockaddr_storage, libc::socklen_t)> = runs
        .iter()
        .map(|r| super::media::sockaddr(out[r.start].0))
        .collect();
    let first = runs[0].start;
    let mut iovs: Vec<libc::iovec> = out[first..runs[n - 1].end]
        .iter()
        .map(|(_, b)| libc::iovec {
            iov_base: b.as_ptr() as *mut libc::c_void,
            iov_len: b.len(),
        })
        .collect();
    // Room for one control message holding a u16, per run.
    let mut control = vec![[0u64; 4]; n];
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) } as usize;
    // Raw pointers taken once, after the vectors are complete: each
    // message points into them, and a message's iovecs run on past its
    // first.
    let (name_at, iov_at, control_at) =
        (names.as_mut_ptr(), iovs.as_mut_ptr(), control.as_mut_ptr());
    let mut msgs: Vec<libc::mmsghdr> = Vec::with_capacity(n);
    for (k, r) in runs.iter().enumerate() {
        // SAFETY: an all-zero msghdr is a valid empty one.
        let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
        // SAFETY (the three `add`s): `k < n`, the length of `names` and
        // `control`; `r.start - first + r.len()` is at most `iovs.len()`.
        let name = unsafe { name_at.add(k) };
        // SAFETY: `name` points at a live element of `names`.
        unsafe {
            h.msg_name = std::ptr::addr_of_mut!((*name).0) as *mut libc::c_void;
            h.msg_namelen = (*name).1;
        }
        h.msg_iov = unsafe { iov_at.add(r.start - first) };
        h.msg_iovlen = r.len() as _;
        if r.len() > 1 {
            h.msg_control = unsafe { control_at.add(k) } as *mut libc::c_void;
            h.msg_controllen = space as _;
            let segment = out[r.start].1.len() as u16;
            // SAFETY: `control[k]` (not otherwise touched until the call
            // returns) is aligned for cmsghdr and at least
            // CMSG_SPACE(2) bytes long, so the first header and its data
            // lie inside it.
            unsafe {
                let c = libc::CMSG_FIRSTHDR(&h);
                (*c).cmsg_level = libc::SOL_UDP;
                (*c).cmsg_type = libc::UDP_SEGMENT;
                (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as _;
                std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut u16, segment);
            }
        }
        msgs.push(libc::mmsghdr {
            msg_hdr: h,
            msg_len: 0,
        });
    }
    // SAFETY: every pointer in `msgs` points into `names`, `iovs`,
    // `control` or the buffers of `out`, all alive and unmoved until the
    // call returns; `n` is the length of `msgs`.
    let r = unsafe {
        libc::sendmmsg(
            sock.as_raw_fd(),
            msgs.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// One `sendmmsg` of as many of `out` as it takes (one datagram where
/// there is no `sendmmsg`): how many went.
pub fn send_batch(sock: &std::net::UdpSocket, out: &[(SocketAddr, Vec<u8>)]) -> io::Result<usize> {
    send_some_std(sock, out)
}

#[cfg(not(target_os = "linux"))]
fn send_some_std(sock: &std::net::UdpSocket, out: &[(SocketAddr, Vec<u8>)]) -> io::Result<usize> {
    sock.send_to(&out[0].1, out[0].0).map(|_| 1)
}

#[cfg(target_os = "linux")]
fn send_some_std(sock: &std::net::UdpSocket, out: &[(SocketAddr, Vec<u8>)]) -> io::Result<usize> {
    send_some(sock, out)
}

/// Room for one receive call's datagrams and their sources.
pub struct RecvMany {
    buf: Vec<u8>,
    lens: [usize; RECV_BATCH],
    from: [Option<SocketAddr>; RECV_BATCH],
    /// Each datagram's arrival, where the socket stamps them.
    at: [Option<std::time::SystemTime>; RECV_BATCH],
    control: Vec<u8>,
}

impl Default for RecvMany {
    fn default() -> Self {
        RecvMany {
            buf: vec![0u8; RECV_BATCH * RECV_SIZE],
            lens: [0; RECV_BATCH],
            from: [None; RECV_BATCH],
            at: [None; RECV_BATCH],
            control: vec![0u8; RECV_BATCH * CONTROL_SIZE],
        }
    }
}

impl RecvMany {
    /// Read what waits on `sock`, up to a batch: how many datagrams came
    /// (`WouldBlock` when none on a non-blocking socket).
    pub fn recv_std(&mut self, sock: &std::net::UdpSocket) -> io::Result<usize> {
        self.recv_some(sock)
    }

    #[cfg(target_os = "linux")]
    fn recv_some(&mut self, sock: &impl std::os::fd::AsRawFd) -> io::Result<usize> {
        // SAFETY: all-zero sockaddr_storage values are valid.
        let mut names: [libc::sockaddr_storage; RECV_BATCH] = unsafe { std::mem::zeroed() };
        let mut iovs: Vec<libc::iovec> = self
            .buf
            .chunks_mut(RECV_SIZE)
            .map(|c| libc::iovec {
                iov_base: c.as_mut_ptr() as *mut libc::c_void,
                iov_len: c.len(),
            })
            .collect();
        let mut msgs: Vec<libc::mmsghdr> = iovs
            .iter_mut()
            .zip(names.iter_mut())
            .zip(self.control.chunks_mut(CONTROL_SIZE))
            .map(|((iov, name), control)| {
                // SAFETY: an all-zero msghdr is a valid empty one.
                let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
                h.msg_name = name as *mut libc::sockaddr_storage as *mut libc::c_void;
                h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                h.msg_iov = iov as *mut libc::iovec;
                h.msg_iovlen = 1;
                h.msg_control = control.as_mut_ptr() as *mut libc::c_void;
                h.msg_controllen = control.len() as _;
                libc::mmsghdr {
                    msg_hdr: h,
                    msg_len: 0,
                }
            })
            .collect();
        // SAFETY: each header points at one iovec of `iovs` (each at its
        // own RECV_SIZE chunk of `self.buf`), one entry of `names` and its
        // own CONTROL_SIZE chunk of `self.control`; all outlive the call.
        let r = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                msgs.as_mut_ptr(),
                msgs.len() as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = r as usize;
        for (k, m) in msgs.iter().take(n).enumerate() {
            self.lens[k] = (m.msg_len as usize).min(RECV_SIZE);
            self.from[k] = super::media::socket_addr(&names[k]);
            self.at[k] = arrival_stamp(&m.msg_hdr);
        }
        Ok(n)
    }

    #[cfg(not(target_os = "linux"))]
    fn recv_some(&mut self, sock: &impl RecvFrom) -> io::Result<usize> {
        let (len, from) = sock.recv_from_now(&mut self.buf[..RECV_SIZE])?;
        self.lens[0] = len;
        self.from[0] = Some(from);
        self.at[0] = None;
        Ok(1)
    }

    /// When the kernel took in the `k`-th datagram of the last read, where
    /// the socket stamps arrivals ([`stamp_arrivals`]).
    pub fn arrival(&self, k: usize) -> Option<std::time::SystemTime> {
        self.at[k]
    }

    /// The `k`-th datagram of the last read and its source (`None`: an
    /// address family this reader does not know).
    pub fn datagram(&self, k: usize) -> (&[u8], Option<SocketAddr>) {
        let at = k * RECV_SIZE;
        (&self.buf[at..at + self.lens[k]], self.from[k])
    }
}

#[cfg(not(target_os = "linux"))]
trait RecvFrom {
    fn recv_from_now(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)>;
}

#[cfg(not(target_os = "linux"))]
impl RecvFrom for std::net::UdpSocket {
    fn recv_from_now(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.recv_from(buf)
    }
}

/// The fleet's signalling sockets, read on the loop's own schedule.
///
/// tokio watches a socket edge-triggered: every datagram that arrives
/// wakes the runtime, even when nobody waits on the socket. A fleet in a
/// registration storm gets thousands of answers a second, and a wake-up
/// each cost more than the answers did. These sockets are therefore kept
/// out of tokio. They sit in an epoll set of their own (level-triggered),
/// which the loop asks without waiting ([`Sockets::ready`]) when it comes
/// round on its tick; only while it has nothing to do does it hand that
/// set to tokio ([`Sockets::watch`]) so that the next datagram wakes it,
/// and it takes it back (drops the [`Watch`]) when work comes again. What
/// comes while the loop sleeps queues in the socket, and the kernel's
/// arrival stamps ([`stamp_arrivals`]) keep the latency figures true.
pub struct Sockets {
    #[cfg(target_os = "linux")]
    epoll: std::os::fd::OwnedFd,
    socks: Vec<std::net::UdpSocket>,
    locals: Vec<SocketAddr>,
    /// Whether runs of like datagrams go out as one GSO send.
    gso: std::sync::atomic::AtomicBool,
}

impl Sockets {
    /// Bind a non-blocking socket on each address, arrivals stamped.
    pub fn bind(addrs: &[SocketAddr]) -> io::Result<Sockets> {
        let mut socks = Vec::with_capacity(addrs.len());
        let mut locals = Vec::with_capacity(addrs.len());
        for a in addrs {
            let s = std::net::UdpSocket::bind(a).map_err(|e| {
                io::Error::new(e.kind(), format!("binding a camera socket on {a}: {e}"))
            })?;
            s.set_nonblocking(true)?;
            stamp_arrivals_std(&s);
            locals.push(s.local_addr()?);
            socks.push(s);
        }
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::{AsRawFd, FromRawFd};
            // SAFETY: plain system calls; the new descriptor is owned at once.
            let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
            if ep < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `ep` is a fresh descriptor nobody else owns.
            let epoll = unsafe { std::os::fd::OwnedFd::from_raw_fd(ep) };
            for (k, s) in socks.iter().enumerate() {
                let mut ev = libc::epoll_event {
                    events: libc::EPOLLIN as u32,
                    u64: k as u64,
                };
                // SAFETY: both descriptors are open; `ev` outlives the call.
                if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, s.as_raw_fd(), &mut ev) } < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(Sockets {
                epoll,
                socks,
                locals,
                gso: std::sync::atomic::AtomicBool::new(cfg!(target_os = "linux")),
            })
        }
        #[cfg(not(target_os = "linux"))]
        Ok(Sockets {
            socks,
            locals,
            gso: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.socks.is_empty()
    }

    /// Ask for a receive buffer of `bytes` on every socket.
    pub fn set_receive_buffer(&self, bytes: usize) {
        for s in &self.socks {
            super::media::set_buffer(s, true, bytes);
        }
    }

    pub fn local_addr(&self, s: usize) -> Option<SocketAddr> {
        self.locals.get(s).copied()
    }

    /// Read what waits on socket `s`, up to a batch (`WouldBlock`: nothing).
    pub fn recv(&self, s: usize, rx: &mut RecvMany) -> io::Result<usize> {
        rx.recv_std(&self.socks[s])
    }

    /// Mark in `ready` each socket that has something to read now.
    #[cfg(target_os = "linux")]
    pub fn ready(&self, ready: &mut [bool]) {
        use std::os::fd::AsRawFd;
        const MAX: usize = 64;
        // SAFETY: an all-zero epoll_event is a valid value.
        let mut evs: [libc::epoll_event; MAX] = unsafe { std::mem::zeroed() };
        // SAFETY: `evs` has room for MAX events; timeout 0 never blocks.
        let n = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                evs.as_mut_ptr(),
                MAX as libc::c_int,
                0,
            )
        };
        if n == MAX as libc::c_int {
            // More ready than one call names: read them all.
            ready.iter_mut().for_each(|r| *r = true);
            return;
        }
        for ev in evs.iter().take(n.max(0) as usize) {
            if let Some(r) = ready.get_mut(ev.u64 as usize) {
                *r = true;
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub fn ready(&self, ready: &mut [bool]) {
        ready.iter_mut().for_each(|r| *r = true);
    }

    /// Block the thread until a socket has something to read, or `left`
    /// has passed.
    #[cfg(target_os = "linux")]
    pub fn wait_blocking(&self, left: Duration) {
        use std::os::fd::AsRawFd;
        let ts = libc::timespec {
            tv_sec: left.as_secs().min(i32::MAX as u64) as libc::time_t,
            tv_nsec: left.subsec_nanos() as libc::c_long,
        };
        // SAFETY: an all-zero epoll_event is a valid value.
        let mut ev: libc::epoll_event = unsafe { std::mem::zeroed() };
        // SAFETY: room for one event; `ts` outlives the call; no signal mask.
        unsafe {
            libc::epoll_pwait2(self.epoll.as_raw_fd(), &mut ev, 1, &ts, std::ptr::null());
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub fn wait_blocking(&self, left: Duration) {
        std::thread::sleep(left.min(Duration::from_millis(1)));
    }

    /// Have tokio watch the sockets: while the [`Watch`] lives, a
    /// datagram arriving on any of them wakes the runtime.
    #[cfg(target_os = "linux")]
    pub fn watch(&self) -> io::Result<Watch> {
        let fd = self.epoll.try_clone()?;
        // SAFETY: the AsyncFd owns `fd` (its own descriptor of the epoll
        // set), so it stays open and the same while registered.
        let fd = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
        }
        .map_err(|e| e.into_parts().1)?;
        Ok(Watch { fd })
    }

    #[cfg(not(target_os = "linux"))]
    pub fn watch(&self) -> io::Result<Watch> {
        Ok(Watch {})
    }

    /// Send every datagram of `out` on socket `s` and empty it; how many
    /// the kernel refused. A full send buffer is waited out, a millisecond
    /// at a time, for at most a second.
    ///
    /// Datagrams of one length to one destination go out as one UDP GSO
    /// send (`UDP_SEGMENT`): the kernel builds and routes one large
    /// packet and cuts it into the datagrams at the end, which costs far
    /// less than a pass through the stack per datagram. The receiver sees
    /// the same datagrams; a capture on the sending side's interface may
    /// show the uncut packet. The order of datagrams to different
    /// destinations, or of different lengths, may change. The runs, and
    /// the datagrams that share a run with no other, go out up to
    /// [`BATCH`] in one `sendmmsg`, each run one message of it.
    pub async fn send_all(&self, s: usize, out: &mut Vec<(SocketAddr, Vec<u8>)>) -> u64 {
        let sock = &self.socks[s];
        let mut failed = 0;
        let mut waits = 0;
        let gso = self.gso.load(std::sync::atomic::Ordering::Relaxed);
        if gso && out.len() > 1 {
            out.sort_by_key(|(to, d)| (*to, d.len()));
        }
        let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
        let mut at = 0;
        while at < out.len() {
            let gso = self.gso.load(std::sync::atomic::Ordering::Relaxed);
            // The next runs from `at`: datagrams that can share one GSO
            // send, as many runs as one sendmmsg takes. Without GSO every
            // run is one datagram.
            runs.clear();
            let mut from = at;
            while from < out.len() && runs.len() < BATCH {
                let (to, len) = (out[from].0, out[from].1.len());
                let mut end = from + 1;
                while gso
                    && (1..=GSO_LARGEST).contains(&len)
                    && end < out.len()
                    && end - from < GSO_SEGMENTS
                    && (end - from + 1) * len <= GSO_BYTES
                    && out[end].0 == to
                    && out[end].1.len() == len
                {
                    end += 1;
                }
                runs.push(from..end);
                from = end;
            }
            match send_runs_std(sock, out, &runs) {
                Ok(n) if n > 0 => at = runs[n - 1].end,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && waits < 1000 => {
                    waits += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
                Err(e) if runs[0].len() > 1 && gso_unsupported(&e) => {
                    // Send them one by one from now on.
                    self.gso.store(false, std::sync::atomic::Ordering::Relaxed);
                }
                // The first datagram was refused (an ICMP error from an
                // earlier send, a bad address), or the buffer stayed full:
                // drop it (a whole GSO run: one packet to the kernel), go
                // on with the rest.
                Ok(_) | Err(_) => {
                    failed += runs[0].len() as u64;
                    at = runs[0].end;
                }
            }
        }
        out.clear();
        failed
    }
}

/// Datagrams one GSO send carries at most (the kernel's UDP_MAX_SEGMENTS).
const GSO_SEGMENTS: usize = 64;
/// Longer datagrams go one by one: each segment must fit the path's MTU.
/// (An empty datagram goes alone too: a segment size of 0 is no GSO.)
const GSO_LARGEST: usize = 1_400;
/// The most one GSO send carries in all: one UDP datagram's largest
/// payload over IPv4 (65,535 less the IP and UDP headers); the kernel
/// refuses a larger send whole (`EMSGSIZE`).
const GSO_BYTES: usize = 65_507;

#[cfg(target_os = "linux")]
fn send_runs_std(
    sock: &std::net::UdpSocket,
    out: &[(SocketAddr, Vec<u8>)],
    runs: &[std::ops::Range<usize>],
) -> io::Result<usize> {
    send_runs(sock, out, runs)
}

/// One run of one datagram: GSO is never on here.
#[cfg(not(target_os = "linux"))]
fn send_runs_std(
    sock: &std::net::UdpSocket,
    out: &[(SocketAddr, Vec<u8>)],
    runs: &[std::ops::Range<usize>],
) -> io::Result<usize> {
    let (to, b) = &out[runs[0].start];
    sock.send_to(b, to).map(|_| 1)
}

/// Whether a GSO send failed because GSO is not to be had here (kernel,
/// device or socket), rather than for the datagrams' own sake.
fn gso_unsupported(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Unsupported
        || matches!(
            e.raw_os_error(),
            Some(libc::EINVAL | libc::EIO | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
        )
}

/// When a loop over [`Sockets`] wakes next: on its tick while the last pass
/// did work, else at the first arrival (or its own next deadline).
pub struct Pacer {
    t0: Instant,
    /// Zero: never on a tick, every arrival wakes the loop.
    tick: Duration,
    watch: Option<Watch>,
}

impl Pacer {
    pub fn new(t0: Instant, tick: Duration) -> Pacer {
        Pacer {
            t0,
            tick,
            watch: None,
        }
    }

    /// When to wake, given the loop's own next deadline `wake` and whether
    /// this pass did any work. Deadlines, too, fall on the tick, so that
    /// one wake-up serves all that come due within it. While on the tick
    /// arrivals do not wake the loop; otherwise [`Pacer::arrival`] does.
    pub fn next_wake(&mut self, sockets: &Sockets, worked: bool, wake: Instant) -> Instant {
        if self.tick.is_zero() {
            self.watch_if_needed(sockets);
            return wake;
        }
        let wake = tick_at_or_after(self.t0, wake, self.tick);
        if worked {
            self.watch = None;
            wake.min(tick_after(self.t0, Instant::now(), self.tick))
        } else {
            self.watch_if_needed(sockets);
            wake
        }
    }

    fn watch_if_needed(&mut self, sockets: &Sockets) {
        if self.watch.is_none() && !sockets.is_empty() {
            self.watch = sockets.watch().ok();
        }
    }

    /// [`Pacer::next_wake`] and the wait itself, for a loop that owns its
    /// thread (a runtime of its own, with no other task on it): it sleeps
    /// in the kernel directly, on the tick or in the sockets' own epoll
    /// set, rather than through the runtime's timer and I/O driver, which
    /// cost two more system calls and a second wake-up per pass. A wait
    /// lasts at most `most`, so the caller looks at its stop flag often.
    pub fn block(&mut self, sockets: &Sockets, worked: bool, wake: Instant, most: Duration) {
        self.watch = None;
        let now = Instant::now();
        let mut until = wake.min(now + most);
        if !self.tick.is_zero() {
            until = tick_at_or_after(self.t0, until, self.tick);
            if worked {
                until = until.min(tick_after(self.t0, now, self.tick));
                std::thread::sleep(until.saturating_duration_since(now));
                return;
            }
        }
        sockets.wait_blocking(until.saturating_duration_since(now));
    }

    /// Resolves when a datagram arrives, if arrivals are to wake the loop
    /// now; never otherwise.
    pub async fn arrival(&self) {
        match &self.watch {
            Some(w) => w.readable().await,
            None => std::future::pending().await,
        }
    }

    /// Wait at most `left` for an arrival: false when none came.
    pub async fn arrival_within(&mut self, sockets: &Sockets, left: Duration) -> bool {
        self.watch_if_needed(sockets);
        tokio::time::timeout(left, self.arrival()).await.is_ok()
    }
}

/// Tokio watching a [`Sockets`] set, while it lives.
pub struct Watch {
    #[cfg(target_os = "linux")]
    fd: tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>,
}

impl Watch {
    /// Wait until one of the sockets has something to read.
    #[cfg(target_os = "linux")]
    pub async fn readable(&self) {
        if let Ok(mut guard) = self.fd.readable().await {
            // The set is level-triggered: whatever is left to read shows
            // again on the next look.
            guard.clear_ready();
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub async fn readable(&self) {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

fn stamp_arrivals_std(s: &std::net::UdpSocket) -> bool {
    #[cfg(target_os = "linux")]
    {
        stamp_arrivals(s)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = s;
        false
    }
}

/// The first multiple of `tick` since `t0` after `now`.
pub(super) fn tick_after(t0: Instant, now: Instant, tick: Duration) -> Instant {
    let tick = tick.as_nanos().max(1);
    let k = now.saturating_duration_since(t0).as_nanos() / tick + 1;
    t0 + Duration::from_nanos(u64::try_from(k * tick).unwrap_or(u64::MAX))
}

/// The first multiple of `tick` since `t0` at or after `at`.
pub(super) fn tick_at_or_after(t0: Instant, at: Instant, tick: Duration) -> Instant {
    let tick = tick.as_nanos().max(1);
    let k = at.saturating_duration_since(t0).as_nanos().div_ceil(tick);
    t0 + Duration::from_nanos(u64::try_from(k * tick).unwrap_or(u64::MAX))
}

/// When datagram `k` of the last read came, by the kernel's stamp: `wall`
/// and `mono` are one reading of the two clocks, taken after the read. A
/// datagram without a stamp, or with one from the future, came `mono`.
pub(super) fn arrived(
    rx: &RecvMany,
    k: usize,
    wall: std::time::SystemTime,
    mono: Instant,
) -> Instant {
    rx.arrival(k)
        .and_then(|t| wall.duration_since(t).ok())
        .and_then(|ago| mono.checked_sub(ago))
        .unwrap_or(mono)
}

/// The `SCM_TIMESTAMPNS` (type `SO_TIMESTAMPNS`) a received message carries, as a time.
#[cfg(target_os = "linux")]
fn arrival_stamp(h: &libc::msghdr) -> Option<std::time::SystemTime> {
    // SAFETY: `h` is a header the kernel filled in, its control buffer
    // still alive; the CMSG_* walk stays within `msg_controllen`, and a
    // timestamp's data is one `timespec`, read unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SO_TIMESTAMPNS {
                let ts: libc::timespec =
                    std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::timespec);
                let since = std::time::Duration::new(
                    u64::try_from(ts.tv_sec).ok()?,
                    u32::try_from(ts.tv_nsec).ok()?,
                );
                return std::time::UNIX_EPOCH.checked_add(since);
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_counted_from_the_start() {
        let t0 = Instant::now();
        let tick = Duration::from_millis(4);
        let us = Duration::from_micros;
        assert_eq!(tick_at_or_after(t0, t0, tick), t0);
        assert_eq!(tick_at_or_after(t0, t0 + us(1), tick), t0 + tick);
        assert_eq!(tick_at_or_after(t0, t0 + tick, tick), t0 + tick);
        assert_eq!(tick_after(t0, t0, tick), t0 + tick);
        assert_eq!(tick_after(t0, t0 + tick, tick), t0 + tick * 2);
        assert_eq!(tick_after(t0, t0 + us(4001), tick), t0 + tick * 2);
    }

    #[tokio::test]
    async fn like_datagrams_go_out_together_and_arrive_one_by_one() {
        let tx = Sockets::bind(&["127.0.0.1:0".parse().unwrap()]).unwrap();
        let rx_a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let rx_b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for r in [&rx_a, &rx_b] {
            r.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
        }
        let (a, b) = (rx_a.local_addr().unwrap(), rx_b.local_addr().unwrap());
        // 150 of one length to `a` (more than one GSO send holds), some
        // of other lengths to both, interleaved.
        let mut out = Vec::new();
        let mut want_a = Vec::new();
        let mut want_b = Vec::new();
        for k in 0..200u32 {
            let (to, len) = match k % 4 {
                0..=2 => (a, 300),
                _ => (b, 100 + (k as usize % 3)),
            };
            let mut d = vec![(k % 251) as u8; len];
            d[..4].copy_from_slice(&k.to_be_bytes());
            if to == a {
                want_a.push(d.clone());
            } else {
                want_b.push(d.clone());
            }
            out.push((to, d));
        }
        assert_eq!(tx.send_all(0, &mut out).await, 0);
        assert!(out.is_empty());
        for (r, want) in [(&rx_a, want_a), (&rx_b, want_b)] {
            let mut got = Vec::new();
            let mut buf = [0u8; 2048];
            while got.len() < want.len() {
                let n = r.recv(&mut buf).expect("every datagram arrives");
                got.push(buf[..n].to_vec());
            }
            got.sort();
            let mut want = want;
            want.sort();
            assert_eq!(got, want, "the same datagrams, each whole and on its own");
        }
    }

    /// A fleet socket on loopback, and a plain one to send to that gives
    /// up reading after 5 s.
    fn sender_and_receiver() -> (Sockets, std::net::UdpSocket) {
        let tx = Sockets::bind(&["127.0.0.1:0".parse().unwrap()]).unwrap();
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        (tx, rx)
    }

    #[tokio::test]
    async fn a_run_of_large_like_datagrams_is_cut_to_what_one_send_may_carry() {
        // 64 of 1,200 bytes: 76,800 in all, more than one UDP send takes
        // (the kernel would refuse the whole run).
        let (tx, rx) = sender_and_receiver();
        super::super::media::set_buffer(&rx, true, 4 << 20);
        let to = rx.local_addr().unwrap();
        let mut out: Vec<_> = (0..64u8).map(|k| (to, vec![k; 1_200])).collect();
        assert_eq!(tx.send_all(0, &mut out).await, 0, "none refused");
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        while got.len() < 64 {
            let n = rx.recv(&mut buf).expect("every datagram arrives");
            assert_eq!(n, 1_200);
            got.push(buf[0]);
        }
        got.sort();
        assert_eq!(got, (0..64u8).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn sockets_read_on_demand_carry_the_kernels_arrival_time() {
        let b = Sockets::bind(&["127.0.0.1:0".parse().unwrap()]).unwrap();
        let to = b.local_addr(0).unwrap();
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let before = std::time::SystemTime::now();
        a.send_to(b"one", to).unwrap();
        // Nothing is read until asked; the datagram waits in the socket.
        let watch = b.watch().unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), watch.readable())
            .await
            .expect("the arrival wakes a watcher");
        drop(watch);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let mut ready = [false];
        b.ready(&mut ready);
        assert!(ready[0]);
        let mut rx = RecvMany::default();
        assert_eq!(b.recv(0, &mut rx).unwrap(), 1);
        let after = std::time::SystemTime::now();
        assert_eq!(rx.datagram(0).0, b"one");
        let at = rx.arrival(0).expect("stamped");
        assert!(before <= at && at <= after, "{before:?} {at:?} {after:?}");
        // Read 20 ms after it came: the stamp is the arrival, not the read.
        assert!(after.duration_since(at).unwrap() >= std::time::Duration::from_millis(20));
        assert_eq!(
            b.recv(0, &mut rx).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        let mut ready = [false];
        b.ready(&mut ready);
        assert!(!ready[0]);
    }

    #[tokio::test]
    async fn a_batch_goes_out_and_comes_in_with_its_sources() {
        let (a, b) = sender_and_receiver();
        let to = b.local_addr().unwrap();
        // Lengths all different: no two share a GSO send, so these go by
        // sendmmsg, in order.
        let mut out: Vec<(SocketAddr, Vec<u8>)> =
            (0..100u8).map(|k| (to, vec![k; 10 + k as usize])).collect();
        assert_eq!(a.send_all(0, &mut out).await, 0);
        assert!(out.is_empty());
        let mut rx = RecvMany::default();
        let mut got = Vec::new();
        while got.len() < 100 {
            let n = rx.recv_std(&b).expect("every datagram arrives");
            for k in 0..n {
                let (d, from) = rx.datagram(k);
                assert_eq!(from, a.local_addr(0));
                got.push(d.to_vec());
            }
        }
        for (k, d) in got.iter().enumerate() {
            assert_eq!(d, &vec![k as u8; 10 + k]);
        }
    }
}
