//! The command-line tools present a token from `--token-file` in SETUP (AUTHORIZATION_TOKEN), never in the URL,
//! and a relay with `--auth-key` accepts it.

use std::time::Duration;

use clap::Parser;
use moq_transport::cli::ClientArgs;
use moq_transport::wire::namespace::TrackNamespace;
use moq_transport::{Origin, SessionConfig};

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    client: ClientArgs,
}

#[tokio::test]
async fn a_token_file_authorizes_a_cli_client() {
    let dir = std::env::temp_dir().join(format!("moq-e2e-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_path = dir.join("key.hex");
    std::fs::write(&key_path, moq_relay::auth::generate_key().unwrap()).unwrap();
    let key = moq_relay::auth::load_key(&key_path).unwrap();
    let claims = moq_relay::auth::Claims {
        publish: vec!["live/cli".into()],
        subscribe: vec![],
        exp: moq_relay::auth::now() + 60,
    };
    let token_path = dir.join("token");
    std::fs::write(&token_path, moq_relay::auth::sign(&key, &claims).unwrap()).unwrap();
    let config = moq_relay::Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        http_bind: String::new(),
        auth_key: Some(key_path),
        ..moq_relay::Config::default()
    };
    let relay = moq_relay::Relay::bind(&config).await.unwrap();
    let url = url::Url::parse(&format!("moqt://localhost:{}/", relay.local_addr().unwrap().port())).unwrap();
    let fingerprint = relay.fingerprint().to_string();
    tokio::spawn(relay.run(std::future::pending()));

    let connect = |extra: &[&str]| {
        let mut argv = vec!["test", "--fingerprint", fingerprint.as_str()];
        argv.extend_from_slice(extra);
        let args = Args::try_parse_from(argv).unwrap();
        let url = url.clone();
        async move {
            let client = args.client.client(SessionConfig { origin: Origin::new(), ..Default::default() }).unwrap();
            tokio::time::timeout(Duration::from_secs(10), client.connect(&url)).await.unwrap().unwrap()
        }
    };
    let ns = TrackNamespace::from_path("live/cli").unwrap();
    let with_token = connect(&["--token-file", token_path.to_str().unwrap()]).await;
    assert!(with_token.publish_namespace(ns.clone()).await.is_ok(), "the token from the file is accepted");
    let without = connect(&[]).await;
    assert!(without.publish_namespace(ns).await.is_err(), "no token, no grant");
    let _ = std::fs::remove_dir_all(&dir);
}
