//! SIP over TCP for the load run: each connection's reader frames the
//! stream by Content-Length ([`StreamFramer`], RFC 3261 §18.3) and hands
//! whole messages to the one loop that drives the state machines; writes
//! go out from that loop.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

use crate::proto::sip::{Framed, StreamFramer, DEFAULT_MAX_MESSAGE};

/// What a connection's reader hands up.
#[derive(Debug)]
pub enum Read {
    Message(Vec<u8>),
    /// The connection ended: closed by the peer, broken, or unframeable.
    Closed(String),
}

/// Read messages from `rd` until the connection ends; each goes to `tx`
/// with `key`.
pub async fn read_messages<K: Clone>(
    mut rd: OwnedReadHalf,
    key: K,
    tx: mpsc::UnboundedSender<(K, Read)>,
) {
    let mut framer = StreamFramer::new(DEFAULT_MAX_MESSAGE);
    let mut buf = vec![0u8; 16 * 1024];
    let why = loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) => break "closed by the peer".to_string(),
            Ok(n) => n,
            Err(e) => break e.to_string(),
        };
        framer.push(&buf[..n]);
        let mut broken = None;
        while let Some(item) = framer.next_item() {
            match item {
                Framed::Message(raw, _) => {
                    if tx.send((key.clone(), Read::Message(raw))).is_err() {
                        return;
                    }
                }
                Framed::Keepalive => {}
                Framed::Broken(f) => broken = Some(f.finding().message),
            }
        }
        if let Some(b) = broken {
            break b;
        }
    };
    let _ = tx.send((key, Read::Closed(why)));
}

/// Write `bytes` whole: at once when the socket takes them, else waiting.
pub async fn write(wr: &mut OwnedWriteHalf, bytes: &[u8]) -> std::io::Result<()> {
    let mut at = 0;
    while at < bytes.len() {
        match wr.try_write(&bytes[at..]) {
            Ok(n) => at += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                return wr.write_all(&bytes[at..]).await;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
