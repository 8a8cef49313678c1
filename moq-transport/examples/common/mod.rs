//! Command-line options shared by the examples: which track, how to trust the server and which drafts to offer.

use anyhow::Context;
use moq_transport::quic::Client;
use moq_transport::tls::{Trust, parse_fingerprint};
use moq_transport::wire::Version;
use moq_transport::wire::namespace::{FullTrackName, TrackNamespace};
use moq_transport::{Error, SessionConfig};

#[derive(clap::Args)]
pub struct TrackArgs {
    /// Namespace, `/`-separated.
    #[arg(long, default_value = "clock")]
    pub namespace: String,
    /// Track name.
    #[arg(long, default_value = "now")]
    pub track: String,
}

impl TrackArgs {
    /// The full track name these options select.
    pub fn name(&self) -> anyhow::Result<FullTrackName> {
        Ok(FullTrackName::new(TrackNamespace::from_path(&self.namespace)?, self.track.as_str()))
    }
}

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
