//! The relay's settings: every flag is declared once, on [`Config`]; a `--config` TOML file supplies the same
//! settings by name (`_` for `-`) wherever the command line leaves them unset.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

/// Groups each track keeps by default: about a minute of rewind at the usual 1 s groups.
pub const DEFAULT_CACHE_GROUPS: usize = 64;

/// Relay settings.
#[derive(Debug, Clone, clap::Parser)]
#[command(about = "A Media over QUIC relay (draft-ietf-moq-transport-19/-18) over raw QUIC and WebTransport")]
pub struct Config {
    /// A TOML file with any of these settings (keys as the flags, with `_` for `-`); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// UDP address for MoQT, raw QUIC (moqt://) and WebTransport (https://) on the same port.
    #[arg(long, default_value = "[::]:4443")]
    pub bind: SocketAddr,
    /// TCP address for HTTP: /certificate.sha256, /health, /metrics. Empty to disable.
    #[arg(long, default_value = "[::]:4443")]
    pub http_bind: String,
    /// HTTP connections open at once; more are closed on accept.
    #[arg(long, default_value_t = 1024)]
    pub http_max_connections: usize,
    /// An HTTP client must send its request headers within this time (and may idle this long between
    /// keep-alive requests).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub http_header_timeout: std::time::Duration,
    /// PEM certificate chain; without it a self-signed certificate is generated.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Host names for the generated self-signed certificate (valid 14 days).
    #[arg(long, default_value = "localhost")]
    pub tls_generate: Vec<String>,
    /// Groups kept per track for late joiners, FETCH and the player's rewind (64: a minute at 1 s groups).
    #[arg(long, default_value_t = DEFAULT_CACHE_GROUPS)]
    pub cache_groups: usize,
    /// Payload bytes kept per track beyond its newest group (older groups are dropped first).
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    pub cache_bytes: u64,
    /// Requests (bidirectional streams) one client may have open at once: subscriptions, fetches, announcements.
    #[arg(long, default_value_t = moq_transport::DEFAULT_MAX_BIDI_STREAMS)]
    pub max_bidi_streams: u32,
    /// Subgroup streams one client may have open at once (a publisher needs about tracks × groups in flight).
    #[arg(long, default_value_t = moq_transport::DEFAULT_MAX_UNI_STREAMS)]
    pub max_uni_streams: u32,
    /// Require JWTs signed with this key (hex file; make one with `moq-relay keygen`). Without it everything is
    /// allowed.
    #[arg(long)]
    pub auth_key: Option<PathBuf>,
    /// Namespace prefix open to anonymous publish and subscribe when --auth-key is set (repeatable; "" = all).
    #[arg(long)]
    pub auth_public: Vec<String>,
    /// How long after its expiry a token is still accepted (clock skew between the token issuer and the relay).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub auth_leeway: std::time::Duration,
    /// Join the cluster whose root relay is at this URL (moqt://, https://, or http:// to fetch its fingerprint
    /// on every connect); the root itself leaves it unset. Repeat it to name standby roots, tried in order when
    /// the link is lost: a standby root is itself a node of the first (`--cluster-root <first>`), so the
    /// cluster stays one tree while the first root is down.
    #[arg(long)]
    pub cluster_root: Vec<url::Url>,
    /// This node's own URL as other relays and clients should reach it (reported in logs and SETUP).
    #[arg(long)]
    pub cluster_node: Option<url::Url>,
    /// SHA-256 of the root's certificate (hex), to pin it; see its /certificate.sha256.
    #[arg(long)]
    pub cluster_fingerprint: Option<String>,
    /// Keep-alive on the link to the cluster root (a PING when nothing else was sent this long).
    #[arg(long, default_value = "250ms", value_parser = parse_duration)]
    pub cluster_keepalive: std::time::Duration,
    /// Idle timeout of the link to the cluster root: both ends declare the other dead after this much silence
    /// (QUIC uses the smaller offer, so the root follows the leaf's), and re-route.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub cluster_idle_timeout: std::time::Duration,
    /// When every publisher of a track is lost (its session or relay died, not a clean end), how long the
    /// relay's copy waits for one to come back (the publisher reconnecting here or anywhere in the cluster), so
    /// that subscribers carry on without resubscribing. 0 ends such tracks at once.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub reroute_grace: std::time::Duration,
    /// Load shedding: an object that waited this long to go out to a subscriber, while a newer group exists,
    /// ends its group for that subscriber (counted in moq_relay_groups_shed_total), so that subscribers the
    /// relay or their network cannot keep up with stay near the live edge instead of queueing. 0 disables.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub max_latency: std::time::Duration,
    /// Overload control: while the runtime's timers fire this late (smoothed), the relay is short of CPU and
    /// skips a growing share of new groups for live subscribers, least important SUBSCRIBER_PRIORITY first
    /// (counted in moq_relay_groups_shed_total), until they fire on time again. 0 disables.
    #[arg(long, default_value = "10ms", value_parser = parse_duration)]
    pub overload_lag: std::time::Duration,
    /// Bytes QUIC may hold unacknowledged per subscriber connection: what a slow subscriber's backlog inside
    /// QUIC can be, out of --max-latency's reach (256 KiB is 0.4 s at 5 Mb/s). It also caps one connection at
    /// this much per round trip (40 Mb/s at 50 ms).
    #[arg(long, default_value_t = 256 * 1024)]
    pub send_window: u64,
    /// QUIC congestion controller toward subscribers and other relays: bbr, cubic or newreno.
    #[arg(long, default_value_t = moq_transport::Congestion::default())]
    pub congestion: moq_transport::Congestion,
    /// QUIC ACK frequency: ask each peer for an ACK once more than this many packets arrived (0, the default:
    /// QUIC's own, an ACK every second packet). 16 saved about 10 % of the relay's CPU at 100 subscribers, but
    /// some connections then stalled now and then (docs/performance.md). Browsers ignore the request.
    #[arg(long, default_value_t = 0)]
    pub ack_threshold: u32,
    /// QUIC ACK frequency: how long a peer may hold an ACK back (quinn caps it at max(RTT, 25 ms)).
    #[arg(long, default_value = "2ms", value_parser = parse_duration)]
    pub max_ack_delay: std::time::Duration,
    /// How long an upstream subscription stays after its last subscriber (or FETCH or TRACK_STATUS) left, in case
    /// another comes back; then it is cancelled, so that the publisher stops sending.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub upstream_linger: std::time::Duration,
    /// How long a request to a publisher (the relay's upstream SUBSCRIBE, FETCH) waits for the publisher to allow
    /// another stream; then the viewer gets TIMEOUT instead of waiting for ever.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub request_open_timeout: std::time::Duration,
    /// On shutdown: GOAWAY every session, then wait this long for them to leave before closing.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub drain_timeout: std::time::Duration,
    /// Write a MoQT qlog of every session (draft-pardue-moq-qlog-moq-events, JSON-SEQ, one file per session)
    /// into this directory, for debugging interop. Off by default: it writes on every control message.
    #[arg(long)]
    pub qlog_dir: Option<std::path::PathBuf>,
    /// On shutdown, the URI clients are told to move to in GOAWAY (e.g. `https://relay2.example:4443/`), so a
    /// drained relay hands its viewers and cluster nodes to another. Empty: they reconnect to the URI they used.
    #[arg(long, default_value = "")]
    pub goaway_uri: String,
    /// Publish a built-in test clip (640x360 H.264 and Opus, looped in real time) under --demo-namespace.
    #[arg(long)]
    pub demo: bool,
    /// Namespace of the --demo broadcast.
    #[arg(long, default_value = "demo/clip")]
    pub demo_namespace: String,
    /// Namespace prefix of the chat rooms: participants publish `PREFIX/<channel>/users/<id>`, the relay merges
    /// them into `PREFIX/<channel>` track `room` (docs/web.md). Empty to disable.
    #[arg(long, default_value = "chat")]
    pub chat_prefix: String,
    /// Chat posts per second one session may send in the long run (beyond: refused, the page is told).
    #[arg(long, default_value_t = 1.0)]
    pub chat_rate: f64,
    /// Chat posts one session may send at once before --chat-rate applies.
    #[arg(long, default_value_t = 5)]
    pub chat_burst: u32,
    /// Chat posts per second all the sessions of one IP address may send in the long run.
    #[arg(long, default_value_t = 5.0)]
    pub chat_address_rate: f64,
    /// Chat posts all the sessions of one IP address may send at once.
    #[arg(long, default_value_t = 20)]
    pub chat_address_burst: u32,
    /// Chat rooms held at once (a room nobody has been in for 10 minutes is dropped).
    #[arg(long, default_value_t = 1024)]
    pub chat_max_rooms: usize,
    /// Chat participants followed at once over all rooms.
    #[arg(long, default_value_t = 10_000)]
    pub chat_max_participants: usize,
    /// Bytes of AUTHORIZATION_TOKEN aliases a session may register (MAX_AUTH_TOKEN_CACHE_SIZE: 16 per token plus
    /// its value; beyond it the session is closed with AUTH_TOKEN_CACHE_OVERFLOW). 0: no aliases.
    #[arg(long, default_value_t = 8192)]
    pub max_auth_token_cache: u64,
    /// Serve the browser player from this directory (e.g. `web/dist` after `cd web && npm run build`) instead of
    /// the pages built into the binary. Either way `/` lists the live broadcasts and `/watch?name=NS` plays one.
    #[arg(long)]
    pub web_dir: Option<PathBuf>,
    /// Sites that may embed the pages in a frame: the Content-Security-Policy `frame-ancestors` sources, e.g.
    /// `https://example.com https://*.example.org` (docs/security.md). `'none'`: no site may.
    #[arg(long, default_value = "'none'")]
    pub frame_ancestors: String,
    /// Requests of any kind one session may have open at once (beyond: REQUEST_ERROR EXCESSIVE_LOAD).
    #[arg(long, default_value_t = 100)]
    pub max_requests: usize,
    /// SUBSCRIBEs and PUBLISHes one session may have open at once.
    #[arg(long, default_value_t = 64)]
    pub max_subscriptions: usize,
    /// PUBLISH_NAMESPACEs one session may have open at once.
    #[arg(long, default_value_t = 16)]
    pub max_namespaces: usize,
    /// SUBSCRIBE_NAMESPACE and SUBSCRIBE_TRACKS prefixes one session may have open at once.
    #[arg(long, default_value_t = 8)]
    pub max_prefixes: usize,
    /// REQUEST_UPDATEs per second one session may send in the long run (twice as many at once).
    #[arg(long, default_value_t = 10.0)]
    pub max_updates_per_second: f64,
    /// Sessions one IP address may have open at once (beyond: the connection is refused).
    #[arg(long, default_value_t = 64)]
    pub max_sessions_per_address: usize,
    /// SUBSCRIBEs and PUBLISHes open at once over all the sessions of one IP address.
    #[arg(long, default_value_t = 256)]
    pub max_subscriptions_per_address: usize,
    /// Handshakes per second one IP address may start in the long run (twice as many at once).
    #[arg(long, default_value_t = 20.0)]
    pub handshakes_per_second: f64,
    /// Handshakes per second over all addresses beyond which clients must first prove their address (QUIC Retry).
    #[arg(long, default_value_t = 200.0)]
    pub retry_above: f64,
    /// Apply the per-address limits to loopback clients too (off: local tools and benchmarks are not limited).
    #[arg(long)]
    pub limit_loopback: bool,
    /// An address held to no limit, per-address or per-session: another relay of the cluster (repeatable).
    #[arg(long)]
    pub trusted_address: Vec<std::net::IpAddr>,
}

impl Config {
    /// Parses `args` (the program name first), filling what they leave unset from the `--config` file.
    pub fn load_from<I, T>(args: I) -> anyhow::Result<Config>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let matches = Config::command().try_get_matches_from(&args)?;
        let config = Config::from_arg_matches(&matches)?;
        let Some(path) = &config.config else { return Ok(config) };
        let extra = file_args(&matches, path)?;
        let matches = Config::command().try_get_matches_from(args.into_iter().chain(extra))?;
        Ok(Config::from_arg_matches(&matches)?)
    }
}

/// The settings of a `--config` file as command-line arguments, leaving out those `matches` got from the command
/// line (which win). Keys are the flags' names; an unknown key is an error when the arguments are parsed.
pub fn file_args(matches: &ArgMatches, path: &Path) -> anyhow::Result<Vec<OsString>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let table: toml::Table = toml::from_str(&text).with_context(|| format!("parse {}", path.display()))?;
    let mut args = Vec::new();
    for (key, value) in table {
        let on_command_line =
            matches.try_get_raw(&key).is_ok() && matches.value_source(&key) == Some(ValueSource::CommandLine);
        if on_command_line {
            continue;
        }
        let flag = format!("--{}", key.replace('_', "-"));
        let values = match value {
            toml::Value::Array(items) => items,
            single => vec![single],
        };
        for v in values {
            match v {
                toml::Value::Boolean(true) => args.push(flag.clone().into()),
                toml::Value::Boolean(false) => {}
                toml::Value::String(s) => args.extend([flag.clone().into(), s.into()]),
                other => args.extend([flag.clone().into(), other.to_string().into()]),
            }
        }
    }
    Ok(args)
}

pub(crate) fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit()).map(|i| s.split_at(i)).unwrap_or((s, "s"));
    let n: u64 = num.parse().map_err(|_| format!("not a duration: {s:?} (e.g. 500ms, 5s)"))?;
    match unit {
        "ms" => Ok(std::time::Duration::from_millis(n)),
        "s" | "" => Ok(std::time::Duration::from_secs(n)),
        "m" => Ok(std::time::Duration::from_secs(n * 60)),
        _ => Err(format!("unknown unit in {s:?} (ms, s or m)")),
    }
}

impl Default for Config {
    fn default() -> Self {
        <Config as clap::Parser>::parse_from(["moq-relay"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_file_and_flags() {
        let path = std::env::temp_dir().join(format!("moq-relay-test-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            "bind = \"127.0.0.1:5000\"\ncache_groups = 3\nauth_public = [\"demo\"]\ndrain_timeout = \"250ms\"\n\
             max_uni_streams = 64\ndemo = true\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let c = Config::load_from(["moq-relay", "--config", p]).unwrap();
        assert_eq!(c.bind, "127.0.0.1:5000".parse().unwrap());
        assert_eq!(c.cache_groups, 3);
        assert_eq!(c.auth_public, vec!["demo".to_string()]);
        assert_eq!(c.drain_timeout, std::time::Duration::from_millis(250));
        assert_eq!(
            (c.max_uni_streams, c.max_bidi_streams, c.demo),
            (64, moq_transport::DEFAULT_MAX_BIDI_STREAMS, true)
        );
        // Flags win over the file, repeatable ones too; defaults do not.
        let c = Config::load_from(["moq-relay", "--config", p, "--cache-groups", "9", "--auth-public", "x"]).unwrap();
        assert_eq!((c.cache_groups, c.bind), (9, "127.0.0.1:5000".parse().unwrap()));
        assert_eq!(c.auth_public, vec!["x".to_string()]);
        // Unknown keys are an error, not silently ignored.
        std::fs::write(&path, "bnid = \"x\"\n").unwrap();
        assert!(Config::load_from(["moq-relay", "--config", p]).is_err());
        let _ = std::fs::remove_file(&path);
    }
}
