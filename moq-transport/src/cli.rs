//! Command-line options for client endpoints, shared by the apps and examples (feature `cli`).

use crate::quic::Client;
use crate::tls::{Trust, parse_fingerprint};
use crate::wire::Version;
use crate::{Error, SessionConfig};

/// How to reach and trust a relay: `--fingerprint`, `--insecure`, `--draft`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClientArgs {
    /// Trust the server certificate with this SHA-256 (hex). Not needed for http:// URLs, whose fingerprint is
    /// fetched from /certificate.sha256.
    #[arg(long)]
    pub fingerprint: Option<String>,
    /// Do not verify the server certificate (development only).
    #[arg(long)]
    pub insecure: bool,
    /// Offer only this draft version (18 or 19) when connecting; default: both, newest first.
    #[arg(long)]
    pub draft: Option<u32>,
}

impl ClientArgs {
    /// A client endpoint with these settings.
    pub fn client(&self, config: SessionConfig) -> Result<Client, Error> {
        let trust = match (&self.fingerprint, self.insecure) {
            (Some(fp), _) => Trust::Fingerprints(vec![parse_fingerprint(fp)?]),
            (None, true) => Trust::Insecure,
            (None, false) => Trust::System,
        };
        let versions = match self.draft {
            None => Vec::new(),
            Some(d) => vec![Version::from_draft(d).ok_or_else(|| Error::Config(format!("unsupported draft {d}")))?],
        };
        Ok(Client::new(trust, config)?.with_versions(&versions))
    }
}
