//! What the command-line apps share (feature `cli`): client endpoint options, logging, and exit handling.

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

/// Logs to stderr, filtered by `RUST_LOG` or else `default` (e.g. `"warn"`), so that stdout stays free for data.
pub fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter).init();
}

/// An app's exit: success, or `name: error` (with its causes) on stderr and status 1.
pub fn exit<E: std::fmt::Display>(name: &str, result: Result<(), E>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
