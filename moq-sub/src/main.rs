use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    moq_transport::cli::init_logging("warn");
    moq_transport::cli::exit("moq-sub", moq_sub::run(moq_sub::Args::parse()).await)
}
