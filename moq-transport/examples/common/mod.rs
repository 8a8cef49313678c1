//! Command-line options shared by the examples: how to trust the server and which drafts to offer.

use anyhow::Context;
use moq_transport::quic::Client;
use moq_transport::tls::{Trust, parse_fingerprint};
use moq_transport::wire::Version;
use moq_transport::{Error, SessionConfig};

#[derive(clap::Args)]
pub struct ClientArgs {
    /// Trust the server certificate with this SHA-256 (hex).
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
    pub fn client(&self, config: SessionConfig) -> anyhow::Result<Client> {
        let trust = match (&self.fingerprint, self.insecure) {
            (Some(fp), _) => Trust::Fingerprints(vec![parse_fingerprint(fp)?]),
            (None, true) => Trust::Insecure,
            (None, false) => Trust::System,
        };
        let versions = match self.draft {
            None => Vec::new(),
            Some(d) => vec![Version::from_draft(d).context("unsupported draft")?],
        };
        Ok(Client::new(trust, config).map_err(|e: Error| anyhow::anyhow!(e))?.with_versions(&versions))
    }
}
