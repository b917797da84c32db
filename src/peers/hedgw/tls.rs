//! TLS for HEDGW (§5.2: TD 必须采用 TLS1.2 协议中 AEAD 模式): TLS 1.2 only,
//! and only the AEAD suites of 附录E's cipher list.
//!
//! 附录E's `cipher_list` also names ECDHE-ECDSA-AES128-SHA256 and
//! ECDHE-RSA-AES128-SHA256, which are CBC, not AEAD. Decision: §5.2's
//! "AEAD 模式" wins; those two are not offered (rustls has no CBC suites
//! anyway). TLS 1.0 and 1.1 are refused: rustls does not implement them.

use std::sync::Arc;

use anyhow::{Context, Result};
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme};

/// The AEAD suites of 附录E's cipher list, in its order.
pub fn provider() -> CryptoProvider {
    let s = ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256;
    CryptoProvider {
        cipher_suites: vec![
            s,
            ring::cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            ring::cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ],
        ..ring::default_provider()
    }
}

/// A certificate and key for a reference gateway.
pub struct Identity {
    pub cert: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
}

impl Identity {
    /// A fresh self-signed certificate for `names` (made at run time; a
    /// built-in peer has no other).
    pub fn self_signed(names: &[&str]) -> Result<Identity> {
        let ck = rcgen::generate_simple_self_signed(
            names.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .context("generating a certificate")?;
        Ok(Identity {
            cert: ck.cert.der().clone(),
            key: PrivateKeyDer::try_from(ck.signing_key.serialize_der())
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        })
    }
}

/// The gateway's TLS: 1.2 only, the AEAD suites only.
pub fn server_config(id: &Identity) -> Result<Arc<ServerConfig>> {
    let cfg = ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .context("TLS 1.2 with the AEAD suites")?
        .with_no_client_auth()
        .with_single_cert(vec![id.cert.clone()], id.key.clone_key())
        .context("the gateway certificate")?;
    Ok(Arc::new(cfg))
}

/// The TD's TLS: 1.2 only, the AEAD suites only. With `root`, the gateway
/// must present that certificate (or one it signed); without, any
/// certificate is taken (a lab gateway with a certificate of its own).
pub fn client_config(root: Option<&CertificateDer<'static>>) -> Result<Arc<ClientConfig>> {
    let b = ClientConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .context("TLS 1.2 with the AEAD suites")?;
    let cfg = match root {
        Some(r) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(r.clone()).context("the gateway certificate")?;
            b.with_root_certificates(roots).with_no_client_auth()
        }
        None => b
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider())))
            .with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}

/// Takes any certificate, still checking the handshake signatures.
#[derive(Debug)]
struct AnyCertificate(CryptoProvider);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A ClientHello that offers TLS 1.1 only (record and hello version
/// 0x0302, TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA and
/// TLS_RSA_WITH_AES_128_CBC_SHA): what a TD stuck on TLS 1.1 sends. A
/// HEDGW gateway must answer it with an alert or a close, never a
/// ServerHello.
pub fn tls11_client_hello() -> Vec<u8> {
    let mut hello = Vec::new();
    hello.extend_from_slice(&[0x03, 0x02]); // client_version TLS 1.1
    hello.extend((0u8..32).map(|i| i.wrapping_mul(37))); // random
    hello.push(0); // session id
    hello.extend_from_slice(&[0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]); // cipher suites
    hello.extend_from_slice(&[0x01, 0x00]); // compression: null
    let mut hs = vec![0x01]; // ClientHello
    hs.extend_from_slice(&(hello.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&hello);
    let mut rec = vec![0x16, 0x03, 0x02]; // handshake record, TLS 1.1
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

/// What a server answered to a ClientHello: the first record's type and
/// version, or `None` for a close without a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelloAnswer {
    /// A handshake record (a ServerHello): the server went on.
    Handshake { version: u16 },
    /// An alert: refused.
    Alert { level: u8, description: u8 },
    /// The connection closed without a record: refused.
    Closed,
    /// Something that is not a TLS record.
    Other(u8),
}

impl HelloAnswer {
    pub fn refused(self) -> bool {
        matches!(self, HelloAnswer::Alert { .. } | HelloAnswer::Closed)
    }

    /// Read the first record of an answer.
    pub fn parse(b: &[u8]) -> HelloAnswer {
        match b {
            [] => HelloAnswer::Closed,
            [0x15, _, _, _, _, level, desc, ..] => HelloAnswer::Alert {
                level: *level,
                description: *desc,
            },
            [0x16, major, minor, ..] => HelloAnswer::Handshake {
                version: u16::from_be_bytes([*major, *minor]),
            },
            [other, ..] => HelloAnswer::Other(*other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hello_is_well_formed() {
        let h = tls11_client_hello();
        assert_eq!(&h[..3], &[0x16, 0x03, 0x02]);
        let len = u16::from_be_bytes([h[3], h[4]]) as usize;
        assert_eq!(h.len(), 5 + len);
        let hs_len = u32::from_be_bytes([0, h[6], h[7], h[8]]) as usize;
        assert_eq!(len, 4 + hs_len);
    }

    #[test]
    fn only_aead_suites_are_offered() {
        let p = provider();
        assert_eq!(p.cipher_suites.len(), 4);
        for s in &p.cipher_suites {
            let name = format!("{:?}", s.suite());
            assert!(name.contains("GCM"), "{name}");
        }
    }

    #[test]
    fn answers_are_classified() {
        assert!(HelloAnswer::parse(&[]).refused());
        assert!(HelloAnswer::parse(&[0x15, 3, 3, 0, 2, 2, 70]).refused());
        assert!(!HelloAnswer::parse(&[0x16, 3, 3, 0, 40]).refused());
        assert!(!HelloAnswer::parse(b"HTTP/1.1").refused());
    }
}
