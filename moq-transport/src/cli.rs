//! What the command-line apps share (feature `cli`): client endpoint and reconnection options, logging, and exit
//! handling.

use std::time::{Duration, Instant};

use crate::origin::Origin;
use crate::quic::Client;
use crate::tls::{Trust, parse_fingerprint};
use crate::wire::Version;
use crate::{AckFrequency, Error, SessionConfig};

/// How to reach and trust a relay, and what to show it: `--fingerprint`, `--insecure`, `--draft`, `--token-file`
/// (or `MOQ_TOKEN`).
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
    /// A file holding the token (e.g. a JWT from `moq-relay token`), sent in SETUP as an AUTHORIZATION_TOKEN:
    /// never in the URL, so not in logs or shell history. The environment variable `MOQ_TOKEN` works too.
    #[arg(long)]
    pub token_file: Option<std::path::PathBuf>,
    /// Write a MoQT qlog of each session (JSON-SEQ, draft-pardue-moq-qlog-moq-events) into this directory.
    #[arg(long)]
    pub qlog_dir: Option<std::path::PathBuf>,
}

impl ClientArgs {
    /// The token to present: `--token-file`'s contents (trimmed), else `MOQ_TOKEN`.
    pub fn token(&self) -> Result<Option<String>, Error> {
        if let Some(path) = &self.token_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::Config(format!("--token-file {}: {e}", path.display())))?;
            return Ok(Some(text.trim().to_string()));
        }
        Ok(std::env::var("MOQ_TOKEN").ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()))
    }

    /// `config` with the token (if any) added to its SETUP.
    pub fn session_config(&self, mut config: SessionConfig) -> Result<SessionConfig, Error> {
        if let Some(token) = self.token()? {
            config.auth_tokens.push(crate::wire::token::AuthToken::value(token.into_bytes()));
        }
        if self.qlog_dir.is_some() {
            config.qlog_dir = self.qlog_dir.clone();
        }
        Ok(config)
    }

    /// A client endpoint with these settings.
    pub fn client(&self, config: SessionConfig) -> Result<Client, Error> {
        let config = self.session_config(config)?;
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

/// How often the peer should acknowledge what we send: `--ack-threshold`, `--max-ack-delay` (see
/// [`AckFrequency`]).
#[derive(Debug, Clone, clap::Args)]
pub struct AckArgs {
    /// QUIC ACK frequency: ask the peer for an ACK once more than this many packets arrived (0, the default:
    /// QUIC's own, an ACK every second packet, and no ACK_FREQUENCY request).
    #[arg(long, default_value_t = 0)]
    pub ack_threshold: u32,
    /// QUIC ACK frequency: how long the peer may hold an ACK back (quinn caps it at max(RTT, 25 ms)).
    #[arg(long, default_value = "2ms", value_parser = humantime::parse_duration)]
    pub max_ack_delay: Duration,
}

impl AckArgs {
    /// What to put in [`SessionConfig::ack_frequency`].
    pub fn ack_frequency(&self) -> Option<AckFrequency> {
        AckFrequency::from_flags(self.ack_threshold, self.max_ack_delay)
    }
}

/// How a client notices a lost relay and comes back: `--idle-timeout`, `--no-reconnect`, `--reconnect-timeout`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReconnectArgs {
    /// Declare the relay lost after this much silence (keep-alives every quarter of it), and reconnect.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
    /// Exit when the connection to the relay is lost, instead of reconnecting.
    #[arg(long)]
    pub no_reconnect: bool,
    /// Give up reconnecting after this long without a working session.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub reconnect_timeout: Duration,
}

impl ReconnectArgs {
    /// Session settings that detect a silent relay within `--idle-timeout`.
    pub fn session_config(&self, origin: Origin) -> SessionConfig {
        SessionConfig {
            origin,
            keep_alive: self.idle_timeout / 4,
            idle_timeout: self.idle_timeout,
            ..Default::default()
        }
    }

    /// The waits between reconnection attempts these options allow.
    pub fn backoff(&self) -> Backoff {
        Backoff {
            give_up_after: (!self.no_reconnect).then_some(self.reconnect_timeout),
            since: None,
            delay: Duration::ZERO,
        }
    }
}

/// Reconnection backoff over one outage: 100 ms, doubling up to 2 s, until the outage has lasted too long.
#[derive(Debug)]
pub struct Backoff {
    /// `None`: never retry.
    give_up_after: Option<Duration>,
    since: Option<Instant>,
    delay: Duration,
}

impl Backoff {
    /// The wait before the next attempt, or `None` to give up. The first call starts the outage.
    pub fn next_wait(&mut self) -> Option<Duration> {
        let limit = self.give_up_after?;
        let since = *self.since.get_or_insert_with(Instant::now);
        if since.elapsed() > limit {
            return None;
        }
        self.delay = (self.delay * 2).clamp(Duration::from_millis(100), Duration::from_secs(2));
        Some(self.delay)
    }

    /// When the current outage began, while in one.
    pub fn outage_since(&self) -> Option<Instant> {
        self.since
    }

    /// Ends the outage: the next failure starts a new one from the shortest wait.
    pub fn reset(&mut self) {
        self.since = None;
        self.delay = Duration::ZERO;
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

#[cfg(test)]
mod tests {

    #[test]
    fn a_token_file_goes_into_setup() {
        let path = std::env::temp_dir().join(format!("moq-token-{}", std::process::id()));
        std::fs::write(&path, "abc.def.ghi\n").unwrap();
        let args = ClientArgs { token_file: Some(path.clone()), ..Default::default() };
        let config = args.session_config(SessionConfig::default()).unwrap();
        assert_eq!(config.auth_tokens, vec![crate::wire::token::AuthToken::value("abc.def.ghi")]);
        std::fs::remove_file(&path).unwrap();
        let missing = ClientArgs { token_file: Some(path), ..Default::default() };
        assert!(matches!(missing.session_config(SessionConfig::default()), Err(Error::Config(_))));
    }

    use super::*;

    fn args(no_reconnect: bool) -> ReconnectArgs {
        ReconnectArgs { idle_timeout: Duration::from_secs(1), no_reconnect, reconnect_timeout: Duration::from_secs(30) }
    }

    #[derive(clap::Parser)]
    struct AckCli {
        #[command(flatten)]
        ack: AckArgs,
    }

    #[test]
    fn ack_flags_default_to_the_library_default_off_and_turn_it_on() {
        use clap::Parser;
        let default = AckCli::parse_from(["x"]).ack.ack_frequency();
        assert_eq!(default, SessionConfig::default().ack_frequency);
        assert_eq!(default, None);
        let set = AckCli::parse_from(["x", "--ack-threshold", "16"]).ack.ack_frequency();
        assert_eq!(set, Some(AckFrequency { threshold: 16, max_delay: Duration::from_millis(2) }));
        let set = AckCli::parse_from(["x", "--ack-threshold", "32", "--max-ack-delay", "5ms"]).ack.ack_frequency();
        assert_eq!(set, Some(AckFrequency { threshold: 32, max_delay: Duration::from_millis(5) }));
    }

    #[test]
    fn backoff_doubles_to_two_seconds_and_restarts_after_reset() {
        let mut b = args(false).backoff();
        let waits: Vec<_> = (0..7).map(|_| b.next_wait().map(|d| d.as_millis())).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 2000, 2000].map(Some));
        assert!(b.outage_since().is_some());
        b.reset();
        assert_eq!(b.outage_since(), None);
        assert_eq!(b.next_wait(), Some(Duration::from_millis(100)));
    }

    #[test]
    fn backoff_gives_up_at_once_without_reconnect_and_after_the_timeout() {
        assert_eq!(args(true).backoff().next_wait(), None);
        let mut b = ReconnectArgs { reconnect_timeout: Duration::from_millis(50), ..args(false) }.backoff();
        assert!(b.next_wait().is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(b.next_wait(), None);
    }
}
