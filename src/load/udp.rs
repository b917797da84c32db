//! Batched UDP for the fleet's signalling: many datagrams to many
//! destinations in one `sendmmsg`, and whatever waits on a socket read in
//! one `recvmmsg` (Linux; one datagram a call elsewhere). Both go through
//! tokio's readiness (`try_io`), so a socket that would block is waited on
//! like any other.

use std::io;
use std::net::SocketAddr;

use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Datagrams per system call.
pub const BATCH: usize = 64;
/// Datagrams one receive call takes at most.
const RECV_BATCH: usize = 16;
/// Room for each received datagram: the largest UDP payload.
const RECV_SIZE: usize = 65_536;

/// Hand as many of `out` as the kernel takes in one call; how many it took.
#[cfg(target_os = "linux")]
fn send_some(sock: &UdpSocket, out: &[(SocketAddr, Vec<u8>)]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let n = out.len().min(BATCH);
    let mut names: Vec<(libc::sockaddr_storage, libc::socklen_t)> = out[..n]
        .iter()
        .map(|(to, _)| super::media::sockaddr(*to))
        .collect();
    let mut iovs: Vec<libc::iovec> = out[..n]
        .iter()
        .map(|(_, b)| libc::iovec {
            iov_base: b.as_ptr() as *mut libc::c_void,
            iov_len: b.len(),
        })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = (0..n)
        .map(|i| {
            // SAFETY: an all-zero msghdr is a valid empty one.
            let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
            h.msg_name = &mut names[i].0 as *mut libc::sockaddr_storage as *mut libc::c_void;
            h.msg_namelen = names[i].1;
            h.msg_iov = &mut iovs[i] as *mut libc::iovec;
            h.msg_iovlen = 1;
            libc::mmsghdr {
                msg_hdr: h,
                msg_len: 0,
            }
        })
        .collect();
    // SAFETY: every pointer in `msgs` points into `names`, `iovs` or the
    // buffers of `out`, all alive and unmoved until the call returns; `n`
    // is the length of `msgs`.
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

#[cfg(not(target_os = "linux"))]
fn send_some(sock: &UdpSocket, out: &[(SocketAddr, Vec<u8>)]) -> io::Result<usize> {
    sock.try_send_to(&out[0].1, out[0].0).map(|_| 1)
}

/// Send every datagram of `out` on `sock` and empty it; how many the
/// kernel refused (a full buffer is waited out, not refused).
pub async fn send_all(sock: &UdpSocket, out: &mut Vec<(SocketAddr, Vec<u8>)>) -> u64 {
    let mut failed = 0;
    let mut at = 0;
    while at < out.len() {
        match sock.try_io(Interest::WRITABLE, || send_some(sock, &out[at..])) {
            Ok(0) => {
                failed += 1;
                at += 1;
            }
            Ok(n) => at += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if sock.writable().await.is_err() {
                    failed += (out.len() - at) as u64;
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
    out.clear();
    failed
}

/// Room for one receive call's datagrams and their sources.
pub struct RecvMany {
    buf: Vec<u8>,
    lens: [usize; RECV_BATCH],
    from: [Option<SocketAddr>; RECV_BATCH],
}

impl Default for RecvMany {
    fn default() -> Self {
        RecvMany {
            buf: vec![0u8; RECV_BATCH * RECV_SIZE],
            lens: [0; RECV_BATCH],
            from: [None; RECV_BATCH],
        }
    }
}

impl RecvMany {
    /// Read what waits on `sock`, up to a batch: how many datagrams came
    /// (`WouldBlock` when none).
    pub fn recv(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        sock.try_io(Interest::READABLE, || self.recv_some(sock))
    }

    #[cfg(target_os = "linux")]
    fn recv_some(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
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
            .map(|(iov, name)| {
                // SAFETY: an all-zero msghdr is a valid empty one.
                let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
                h.msg_name = name as *mut libc::sockaddr_storage as *mut libc::c_void;
                h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                h.msg_iov = iov as *mut libc::iovec;
                h.msg_iovlen = 1;
                libc::mmsghdr {
                    msg_hdr: h,
                    msg_len: 0,
                }
            })
            .collect();
        // SAFETY: each header points at one iovec of `iovs` (each at its
        // own RECV_SIZE chunk of `self.buf`) and one entry of `names`; all
        // outlive the call.
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
        }
        Ok(n)
    }

    #[cfg(not(target_os = "linux"))]
    fn recv_some(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        let (len, from) = sock.try_recv_from(&mut self.buf[..RECV_SIZE])?;
        self.lens[0] = len;
        self.from[0] = Some(from);
        Ok(1)
    }

    /// The `k`-th datagram of the last read and its source (`None`: an
    /// address family this reader does not know).
    pub fn datagram(&self, k: usize) -> (&[u8], Option<SocketAddr>) {
        let at = k * RECV_SIZE;
        (&self.buf[at..at + self.lens[k]], self.from[k])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_batch_goes_out_and_comes_in_with_its_sources() {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = b.local_addr().unwrap();
        let mut out: Vec<(SocketAddr, Vec<u8>)> =
            (0..100u8).map(|k| (to, vec![k; 10 + k as usize])).collect();
        assert_eq!(send_all(&a, &mut out).await, 0);
        assert!(out.is_empty());
        let mut rx = RecvMany::default();
        let mut got = Vec::new();
        while got.len() < 100 {
            b.readable().await.unwrap();
            match rx.recv(&b) {
                Ok(n) => {
                    for k in 0..n {
                        let (d, from) = rx.datagram(k);
                        assert_eq!(from, Some(a.local_addr().unwrap()));
                        got.push(d.to_vec());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        for (k, d) in got.iter().enumerate() {
            assert_eq!(d, &vec![k as u8; 10 + k]);
        }
    }
}
