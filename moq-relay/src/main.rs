use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let config = moq_relay::Config::parse();
    let relay = moq_relay::Relay::bind(&config).await?;
    relay.run(moq_relay::shutdown_signal()).await
}
