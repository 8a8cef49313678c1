//! TLS helpers shared by every app: certificates for servers, trust settings for clients.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};

use crate::Error;

/// The longest validity browsers accept for a certificate pinned with `serverCertificateHashes`.
pub const MAX_SELF_SIGNED_DAYS: i64 = 14;

/// A certificate chain with its private key.
#[derive(Debug)]
pub struct Certificate {
    /// The chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
}

impl Clone for Certificate {
    fn clone(&self) -> Self {
        Certificate { chain: self.chain.clone(), key: self.key.clone_key() }
    }
}

impl Certificate {
    /// Generates a self-signed ECDSA P-256 certificate for `hosts`, valid for 14 days from one hour ago: what
    /// browsers accept for WebTransport with `serverCertificateHashes`.
    pub fn self_signed(hosts: &[&str]) -> Result<Certificate, Error> {
        let params = self_signed_params(hosts)?;
        let key =
            rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| Error::Tls(e.to_string()))?;
        let cert = params.self_signed(&key).map_err(|e| Error::Tls(e.to_string()))?;
        Ok(Certificate { chain: vec![cert.der().clone()], key: PrivateKeyDer::Pkcs8(key.serialize_der().into()) })
    }

    /// Loads a PEM certificate chain and a PEM private key.
    pub fn load(cert: &Path, key: &Path) -> Result<Certificate, Error> {
        let chain = CertificateDer::pem_file_iter(cert)
            .map_err(|e| Error::Tls(format!("{}: {e}", cert.display())))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::Tls(format!("{}: {e}", cert.display())))?;
        if chain.is_empty() {
            return Err(Error::Tls(format!("{}: no certificate", cert.display())));
        }
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| Error::Tls(format!("{}: {e}", key.display())))?;
        Ok(Certificate { chain, key })
    }

    /// The SHA-256 of the leaf certificate (what `serverCertificateHashes` and fingerprint pinning use).
    pub fn sha256(&self) -> [u8; 32] {
        fingerprint(&self.chain[0])
    }

    /// The SHA-256 of the leaf as lowercase hex.
    pub fn sha256_hex(&self) -> String {
        hex(&self.sha256())
    }
}

fn self_signed_params(hosts: &[&str]) -> Result<rcgen::CertificateParams, Error> {
    let names: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names).map_err(|e| Error::Tls(e.to_string()))?;
    let start = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    params.not_before = start;
    params.not_after = start + time::Duration::days(MAX_SELF_SIGNED_DAYS);
    params.distinguished_name.push(rcgen::DnType::CommonName, hosts.first().copied().unwrap_or("localhost"));
    Ok(params)
}

/// SHA-256 of a DER certificate.
pub fn fingerprint(cert: &CertificateDer<'_>) -> [u8; 32] {
    Sha256::digest(cert.as_ref()).into()
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses a hex fingerprint (colons allowed).
pub fn parse_fingerprint(s: &str) -> Result<[u8; 32], Error> {
    let digits: Vec<u8> = s.bytes().filter(|c| *c != b':').collect();
    if digits.len() != 64 {
        return Err(Error::Config(format!("fingerprint must be 32 bytes of hex, got {s:?}")));
    }
    let mut out = [0u8; 32];
    for (i, pair) in digits.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).map_err(|_| Error::Config("fingerprint is not hex".into()))?;
        out[i] = u8::from_str_radix(text, 16).map_err(|_| Error::Config("fingerprint is not hex".into()))?;
    }
    Ok(out)
}

/// How a client decides to trust a server.
#[derive(Debug, Clone)]
pub enum Trust {
    /// The operating system's root store.
    System,
    /// Roots from a PEM file.
    RootFile(std::path::PathBuf),
    /// Exactly these leaf certificate SHA-256 fingerprints (for self-signed development servers).
    Fingerprints(Vec<[u8; 32]>),
    /// No verification at all. Development only: logged loudly.
    Insecure,
}

pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A rustls server configuration (TLS 1.3, ring) for `cert`, without ALPN and without 0-RTT.
pub fn server_config(cert: Certificate) -> Result<rustls::ServerConfig, Error> {
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(cert.chain, cert.key)
        .map_err(|e| Error::Tls(e.to_string()))?;
    tls.max_early_data_size = 0;
    Ok(tls)
}

/// A rustls client configuration for `trust`, without ALPN.
pub fn client_config(trust: &Trust) -> Result<rustls::ClientConfig, Error> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::Tls(e.to_string()))?;
    let config = match trust {
        Trust::System => {
            let mut roots = rustls::RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = roots.add(cert);
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::RootFile(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in
                CertificateDer::pem_file_iter(path).map_err(|e| Error::Tls(format!("{}: {e}", path.display())))?
            {
                roots.add(cert.map_err(|e| Error::Tls(e.to_string()))?).map_err(|e| Error::Tls(e.to_string()))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::Fingerprints(fps) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned { fingerprints: fps.clone(), provider: provider() }))
            .with_no_client_auth(),
        Trust::Insecure => {
            tracing::warn!("TLS certificate verification is DISABLED: development use only");
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Pinned { fingerprints: Vec::new(), provider: provider() }))
                .with_no_client_auth()
        }
    };
    Ok(config)
}

/// Accepts a server certificate whose SHA-256 is pinned (or any certificate when the list is empty, for
/// [`Trust::Insecure`]); handshake signatures are still verified.
#[derive(Debug)]
struct Pinned {
    fingerprints: Vec<[u8; 32]>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if self.fingerprints.is_empty() || self.fingerprints.contains(&fingerprint(end_entity)) {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_is_browser_friendly() {
        let params = self_signed_params(&["localhost"]).unwrap();
        let validity = params.not_after - params.not_before;
        assert!(validity <= time::Duration::days(MAX_SELF_SIGNED_DAYS));
        assert!(params.not_before < time::OffsetDateTime::now_utc());
        let cert = Certificate::self_signed(&["localhost", "127.0.0.1"]).unwrap();
        assert_eq!(parse_fingerprint(&cert.sha256_hex()).unwrap(), cert.sha256());
        assert_eq!(cert.sha256_hex().len(), 64);
        assert!(parse_fingerprint("abcd").is_err());
    }
}
