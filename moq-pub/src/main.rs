use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    moq_transport::cli::init_logging("warn");
    moq_transport::cli::exit("moq-pub", moq_pub::run(moq_pub::Args::parse()).await)
}
