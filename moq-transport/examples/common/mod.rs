//! Command-line options shared by the examples: which track, how to trust the server and which drafts to offer.

use moq_transport::wire::namespace::{FullTrackName, TrackNamespace};

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

pub use moq_transport::cli::ClientArgs;
