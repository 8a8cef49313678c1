use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use moq_relay::auth;

#[derive(Parser)]
#[command(version, about = "A Media over QUIC relay (draft-ietf-moq-transport-19/-18)")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: moq_relay::Config,
}

#[derive(Subcommand)]
enum Command {
    /// Write a new random signing key (hex) to a file.
    Keygen {
        /// Where to write the key.
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Print a signed token (JWT) granting publish/subscribe on namespace prefixes.
    Token {
        /// The signing key file.
        #[arg(long)]
        key: std::path::PathBuf,
        /// Prefix the holder may publish under (repeatable; "" = everything).
        #[arg(long)]
        publish: Vec<String>,
        /// Prefix the holder may subscribe under (repeatable; "" = everything).
        #[arg(long)]
        subscribe: Vec<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 86_400)]
        expires: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let matches = Cli::command().get_matches_from(&args);
    let mut cli = Cli::from_arg_matches(&matches)?;
    // A --config file fills what the command line leaves unset: parse again with its settings as flags.
    if cli.command.is_none()
        && let Some(path) = cli.config.config.clone()
    {
        let extra = moq_relay::file_args(&matches, &path)?;
        cli = Cli::try_parse_from(args.into_iter().chain(extra))?;
    }
    match cli.command {
        Some(Command::Keygen { out }) => {
            std::fs::write(&out, auth::generate_key()? + "\n")?;
            eprintln!("wrote {}", out.display());
            Ok(())
        }
        Some(Command::Token { key, publish, subscribe, expires }) => {
            let key = auth::load_key(&key)?;
            let claims = auth::Claims { publish, subscribe, exp: auth::now() + expires };
            println!("{}", auth::sign(&key, &claims)?);
            Ok(())
        }
        None => {
            let relay = moq_relay::Relay::bind(&cli.config).await?;
            // One line for scripts and supervisors (and the cluster tests) to learn where it listens.
            let http = relay.http_addr().map_or("off".to_string(), |a| a.to_string());
            eprintln!("moq-relay ready: quic={} http={http} fingerprint={}", relay.local_addr()?, relay.fingerprint());
            relay.run(moq_relay::shutdown_signal()).await
        }
    }
}
