//! The fleet's media: one Annex B file muxed into PS and cut into RTP
//! payloads once ([`MediaPackets`]) by the reference camera's muxer and
//! packetizer, then streamed by every camera the
//! platform INVITEs. Per stream only the RTP header differs (SSRC,
//! sequence number, timestamp); it is written into a 12-byte slot and sent
//! with the shared payload as a two-part datagram, many datagrams per
//! system call ([`Batch`], `sendmmsg` on Linux).
//!
//! Pacing is real time: frame `k` of a stream is due `k / fps` after the
//! stream started, and all of that frame's packets leave together, as the
//! reference camera sends them. How late each packet left against that
//! schedule is the media send lag.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use bytes::{BufMut, Bytes, BytesMut};

use crate::media::MediaSource;
use crate::proto::ps::mux::{MuxConfig, PsMuxer};
use crate::proto::ps::Frame;
use crate::proto::rtp::{Packetizer, PacketizerConfig, FIXED_HEADER_LEN, PS_CLOCK_RATE};

/// Largest RTP packet the fleet sends, header included: the reference
/// camera's.
pub const MTU: usize = crate::proto::rtp::packetize::DEFAULT_MTU;
/// Datagrams handed to the kernel per system call at most.
pub const BATCH: usize = 64;
/// The padding stream (ISO/IEC 13818-1 §2.4.3.7, `padding_stream`).
const PADDING_STREAM: u8 = 0xBE;

/// One loop of the media, packetized: what every stream sends.
#[derive(Debug, Clone)]
pub struct MediaPackets {
    /// RTP payloads (PS bytes) in sending order.
    pub payloads: Vec<Bytes>,
    /// Per frame: its first payload and how many; the last payload of a
    /// frame carries the marker bit.
    pub frames: Vec<(u32, u32)>,
    pub fps: f64,
    /// RTP bytes (headers included) of one loop.
    pub loop_bytes: u64,
    /// What the file alone carries, RTP bytes a second, before padding.
    pub natural_bits_per_s: f64,
    /// PS padding added per frame to reach the asked bit rate.
    pub padding_per_frame: usize,
}

impl MediaPackets {
    /// Mux `source` into PS at `fps` and pad every frame evenly with a PS
    /// padding packet so that the RTP stream carries `kbit_s` kbit/s
    /// (headers included). A file that carries more than that is refused:
    /// the run would not send what it says.
    pub fn build(source: &MediaSource, kbit_s: f64, fps: f64) -> Result<MediaPackets> {
        if !(fps.is_finite() && fps > 0.0) {
            bail!("frame rate {fps}: expected a positive number");
        }
        let mut mux = PsMuxer::new(MuxConfig::video(source.codec().codec()))?;
        let tick = f64::from(PS_CLOCK_RATE) / fps;
        let mut ps_frames = Vec::with_capacity(source.len());
        for (i, f) in source.frames().iter().enumerate() {
            let ps = mux.mux(&Frame {
                codec: source.codec().codec(),
                pts: (i as f64 * tick).round() as u64,
                dts: None,
                key: f.key,
                data: f.data.clone(),
            })?;
            ps_frames.push(ps);
        }
        let max = MTU - FIXED_HEADER_LEN;
        let rtp_len = |ps: usize| ps + ps.div_ceil(max) * FIXED_HEADER_LEN;
        let n = ps_frames.len() as f64;
        let loop_s = n / fps;
        let natural: usize = ps_frames.iter().map(|p| rtp_len(p.len())).sum();
        let natural_bits_per_s = natural as f64 * 8.0 / loop_s;
        let want_bytes = kbit_s * 1000.0 / 8.0 * loop_s;
        if natural as f64 > want_bytes * 1.001 {
            bail!(
                "the media carries {:.0} kbit/s, more than --bitrate {kbit_s}: give a higher --bitrate or a smaller file",
                natural_bits_per_s / 1000.0
            );
        }
        // Each frame grows by a padding packet (6-byte header, then 0xFF)
        // and by the RTP headers its extra payload needs; solve for the
        // padding that lands closest to the asked rate.
        let per_frame = (want_bytes - natural as f64) / n;
        let mut pad = 0usize;
        if per_frame >= 6.0 + FIXED_HEADER_LEN as f64 {
            let grow = |p: usize| -> f64 {
                ps_frames
                    .iter()
                    .map(|f| rtp_len(f.len() + p) as f64 - rtp_len(f.len()) as f64)
                    .sum::<f64>()
                    / n
            };
            let (mut lo, mut hi) = (6usize, (per_frame as usize).max(6));
            while lo < hi {
                let mid = (lo + hi).div_ceil(2);
                if grow(mid) <= per_frame {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            pad = lo;
        }
        let mut rtp = Packetizer::new(PacketizerConfig {
            mtu: MTU,
            ..PacketizerConfig::default()
        })?;
        let mut payloads = Vec::new();
        let mut frames = Vec::with_capacity(ps_frames.len());
        let mut loop_bytes = 0u64;
        for ps in ps_frames {
            let mut buf = BytesMut::with_capacity(ps.len() + pad);
            buf.put_slice(&ps);
            let mut left = pad;
            while left >= 6 {
                let body = (left - 6).min(usize::from(u16::MAX));
                buf.put_slice(&[0, 0, 1, PADDING_STREAM]);
                buf.put_u16(body as u16);
                buf.put_bytes(0xFF, body);
                left -= body + 6;
            }
            let frame = buf.freeze();
            let first = payloads.len() as u32;
            // The reference camera's packetizer cuts the frame; each
            // stream writes its own header in front of the payloads.
            for p in rtp.packetize(0, &frame) {
                loop_bytes += p.len() as u64;
                payloads.push(p.slice(FIXED_HEADER_LEN..));
            }
            frames.push((first, payloads.len() as u32 - first));
        }
        Ok(MediaPackets {
            payloads,
            frames,
            fps,
            loop_bytes,
            natural_bits_per_s,
            padding_per_frame: pad,
        })
    }

    /// The RTP bit rate one stream sends.
    pub fn bits_per_s(&self) -> f64 {
        self.loop_bytes as f64 * 8.0 * self.fps / self.frames.len() as f64
    }

    /// The packets of frame `k` (counting on past the end: the file loops).
    pub fn frame(&self, k: u64) -> std::ops::Range<usize> {
        let (first, count) = self.frames[(k % self.frames.len() as u64) as usize];
        first as usize..(first + count) as usize
    }

    /// RTP timestamp offset of frame `k` (90 kHz, wrapping).
    pub fn timestamp(&self, k: u64) -> u32 {
        (k as f64 * f64::from(PS_CLOCK_RATE) / self.fps).round() as u64 as u32
    }

    /// When frame `k` of a stream that started at `t0` is due.
    pub fn due(&self, t0: Instant, k: u64) -> Instant {
        t0 + Duration::from_secs_f64(k as f64 / self.fps)
    }
}

/// The RTP fixed header (RFC 3550 §5.1) of one packet.
pub fn rtp_header(marker: bool, pt: u8, seq: u16, ts: u32, ssrc: u32) -> [u8; FIXED_HEADER_LEN] {
    let mut h = [0u8; FIXED_HEADER_LEN];
    h[0] = 0x80;
    h[1] = (u8::from(marker) << 7) | (pt & 0x7F);
    h[2..4].copy_from_slice(&seq.to_be_bytes());
    h[4..8].copy_from_slice(&ts.to_be_bytes());
    h[8..12].copy_from_slice(&ssrc.to_be_bytes());
    h
}

/// One stream a camera sends.
#[derive(Debug, Clone)]
pub struct Stream {
    pub remote: SocketAddr,
    pub ssrc: u32,
    pub payload_type: u8,
    pub t0: Instant,
    /// The next frame to send.
    pub frame: u64,
    pub seq: u16,
    pub ts_base: u32,
    /// Whether its first packet left.
    pub first_sent: bool,
}

/// Datagrams waiting to go out together: a 12-byte header of their own
/// and a payload shared by every stream.
pub struct Batch {
    headers: Vec<[u8; FIXED_HEADER_LEN]>,
    payloads: Vec<Bytes>,
    dests: Vec<SocketAddr>,
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            headers: Vec::with_capacity(BATCH),
            payloads: Vec::with_capacity(BATCH),
            dests: Vec::with_capacity(BATCH),
        }
    }
}

impl Batch {
    pub fn push(&mut self, header: [u8; FIXED_HEADER_LEN], payload: Bytes, to: SocketAddr) {
        self.headers.push(header);
        self.payloads.push(payload);
        self.dests.push(to);
    }

    pub fn len(&self) -> usize {
        self.headers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.headers.len() >= BATCH
    }

    /// RTP bytes waiting.
    pub fn bytes(&self) -> usize {
        self.payloads
            .iter()
            .map(|p| p.len() + FIXED_HEADER_LEN)
            .sum()
    }

    pub fn clear(&mut self) {
        self.headers.clear();
        self.payloads.clear();
        self.dests.clear();
    }

    /// Send what waits on `sock`; returns (datagrams sent, datagrams the
    /// kernel refused with an error other than a full buffer, system
    /// calls). A full buffer waits until the socket can take more.
    pub async fn flush(&mut self, sock: &tokio::net::UdpSocket) -> (u64, u64, u64) {
        let (mut sent, mut failed, mut calls) = (0u64, 0u64, 0u64);
        let mut at = 0;
        while at < self.len() {
            calls += 1;
            match sock.try_io(tokio::io::Interest::WRITABLE, || {
                send_many(
                    sock,
                    &self.headers[at..],
                    &self.payloads[at..],
                    &self.dests[at..],
                )
            }) {
                Ok(n) => {
                    sent += n as u64;
                    at += n.max(1);
                    if n == 0 {
                        failed += 1;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if sock.writable().await.is_err() {
                        failed += (self.len() - at) as u64;
                        break;
                    }
                }
                // The first datagram was refused (an ICMP error from an
                // earlier send, a bad address): drop it, go on with the rest.
                Err(_) => {
                    failed += 1;
                    at += 1;
                }
            }
        }
        self.clear();
        (sent, failed, calls)
    }
}

/// Hand as many datagrams as the kernel takes to it in one call.
#[cfg(target_os = "linux")]
pub fn send_many(
    sock: &impl std::os::fd::AsRawFd,
    headers: &[[u8; FIXED_HEADER_LEN]],
    payloads: &[Bytes],
    dests: &[SocketAddr],
) -> std::io::Result<usize> {
    let n = headers.len().min(BATCH);
    let mut names: Vec<(libc::sockaddr_storage, libc::socklen_t)> =
        dests[..n].iter().map(|d| sockaddr(*d)).collect();
    let mut iovs: Vec<[libc::iovec; 2]> = (0..n)
        .map(|i| {
            [
                libc::iovec {
                    iov_base: headers[i].as_ptr() as *mut libc::c_void,
                    iov_len: FIXED_HEADER_LEN,
                },
                libc::iovec {
                    iov_base: payloads[i].as_ptr() as *mut libc::c_void,
                    iov_len: payloads[i].len(),
                },
            ]
        })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = (0..n)
        .map(|i| {
            // SAFETY: an all-zero msghdr is a valid empty one.
            let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
            h.msg_name = &mut names[i].0 as *mut libc::sockaddr_storage as *mut libc::c_void;
            h.msg_namelen = names[i].1;
            h.msg_iov = iovs[i].as_mut_ptr();
            h.msg_iovlen = 2;
            libc::mmsghdr {
                msg_hdr: h,
                msg_len: 0,
            }
        })
        .collect();
    // SAFETY: every pointer in `msgs` points into `names`, `iovs`,
    // `headers` or `payloads`, all alive and unmoved until the call returns;
    // `n` is the length of `msgs`.
    let r = unsafe {
        libc::sendmmsg(
            sock.as_raw_fd(),
            msgs.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// One datagram a call where `sendmmsg` is not there.
#[cfg(not(target_os = "linux"))]
pub fn send_many(
    sock: &tokio::net::UdpSocket,
    headers: &[[u8; FIXED_HEADER_LEN]],
    payloads: &[Bytes],
    dests: &[SocketAddr],
) -> std::io::Result<usize> {
    let mut d = Vec::with_capacity(MTU);
    d.extend_from_slice(&headers[0]);
    d.extend_from_slice(&payloads[0]);
    sock.try_send_to(&d, dests[0]).map(|_| 1)
}

#[cfg(target_os = "linux")]
pub(super) fn sockaddr(a: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is valid; the family-specific
    // views written below fit inside it.
    let mut s: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match a {
        SocketAddr::V4(v4) => {
            let p = &mut s as *mut libc::sockaddr_storage as *mut libc::sockaddr_in;
            // SAFETY: sockaddr_in is smaller than sockaddr_storage and aligned within it.
            unsafe {
                (*p).sin_family = libc::AF_INET as libc::sa_family_t;
                (*p).sin_port = v4.port().to_be();
                (*p).sin_addr = libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                };
            }
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            let p = &mut s as *mut libc::sockaddr_storage as *mut libc::sockaddr_in6;
            // SAFETY: as above, for sockaddr_in6.
            unsafe {
                (*p).sin6_family = libc::AF_INET6 as libc::sa_family_t;
                (*p).sin6_port = v6.port().to_be();
                (*p).sin6_flowinfo = v6.flowinfo();
                (*p).sin6_addr = libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                };
                (*p).sin6_scope_id = v6.scope_id();
            }
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (s, len as libc::socklen_t)
}

/// The address a received datagram's `sockaddr_storage` holds; `None`
/// for a family other than IPv4 and IPv6.
#[cfg(target_os = "linux")]
pub(super) fn socket_addr(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match s.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let v = unsafe { &*(s as *const libc::sockaddr_storage as *const libc::sockaddr_in) };
            let ip = std::net::Ipv4Addr::from(v.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::new(ip.into(), u16::from_be(v.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let v = unsafe { &*(s as *const libc::sockaddr_storage as *const libc::sockaddr_in6) };
            let ip = std::net::Ipv6Addr::from(v.sin6_addr.s6_addr);
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                ip,
                u16::from_be(v.sin6_port),
                v.sin6_flowinfo,
                v.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Ask for a larger kernel buffer on `sock` (`SO_SNDBUF` or `SO_RCVBUF`);
/// the kernel caps it at its `*mem_max`. Best effort.
#[cfg(target_os = "linux")]
pub fn set_buffer(sock: &impl std::os::fd::AsRawFd, receive: bool, bytes: usize) {
    let v = bytes.min(i32::MAX as usize) as libc::c_int;
    let opt = if receive {
        libc::SO_RCVBUF
    } else {
        libc::SO_SNDBUF
    };
    // SAFETY: a valid fd and a c_int option value of the right size.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            opt,
            &v as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(not(target_os = "linux"))]
pub fn set_buffer<T>(_sock: &T, _receive: bool, _bytes: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_is_padded_to_the_asked_rate() {
        let src = crate::media::sample_h264();
        let m = MediaPackets::build(&src, 256.0, 25.0).unwrap();
        let rate = m.bits_per_s();
        assert!((rate - 256_000.0).abs() / 256_000.0 < 0.01, "{rate}");
        assert!(m.natural_bits_per_s < 256_000.0);
        assert!(m.padding_per_frame > 0);
        assert_eq!(m.frames.len(), src.len());
        // Every frame's first payload starts with a pack header, and no
        // payload passes the MTU.
        for &(first, count) in &m.frames {
            assert!(count >= 1);
            assert!(m.payloads[first as usize].starts_with(&[0, 0, 1, 0xBA]));
        }
        assert!(m.payloads.iter().all(|p| p.len() + FIXED_HEADER_LEN <= MTU));
        // A rate below the file's own is refused, and says why.
        let e = MediaPackets::build(&src, 1.0, 25.0).unwrap_err();
        assert!(e.to_string().contains("--bitrate"), "{e}");
    }

    #[test]
    fn frames_loop_and_timestamps_follow_the_frame_rate() {
        let src = crate::media::sample_h264();
        let m = MediaPackets::build(&src, 256.0, 25.0).unwrap();
        let n = m.frames.len() as u64;
        assert_eq!(m.frame(n), m.frame(0));
        assert_eq!(m.timestamp(1), 3600);
        assert_eq!(m.timestamp(25), 90_000);
        let t0 = Instant::now();
        assert_eq!(m.due(t0, 25), t0 + Duration::from_secs(1));
        let h = rtp_header(true, 96, 0x1234, 0xAABBCCDD, 7);
        let p = crate::proto::rtp::RtpPacket::parse(&[&h[..], b"x"].concat())
            .map(|p| (p.header.marker, p.header.sequence, p.header.ssrc))
            .unwrap();
        assert_eq!(p, (true, 0x1234, 7));
    }

    #[tokio::test]
    async fn a_batch_goes_out_whole() {
        let rx = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let tx = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = rx.local_addr().unwrap();
        let mut b = Batch::default();
        for k in 0..10u16 {
            b.push(
                rtp_header(false, 96, k, 0, 1),
                Bytes::from(vec![k as u8; 100]),
                to,
            );
        }
        assert_eq!(b.bytes(), 10 * 112);
        let (sent, failed, calls) = b.flush(&tx).await;
        assert_eq!((sent, failed), (10, 0));
        assert!(calls >= 1);
        assert!(b.is_empty());
        let mut buf = [0u8; 2000];
        for k in 0..10u16 {
            let (n, _) = rx.recv_from(&mut buf).await.unwrap();
            assert_eq!(n, 112);
            assert_eq!(u16::from_be_bytes([buf[2], buf[3]]), k);
            assert_eq!(buf[12], k as u8);
        }
    }
}
