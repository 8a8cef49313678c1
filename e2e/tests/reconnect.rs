//! moq-sub survives its relay going away: it reconnects and carries on in the same output file, whose timeline
//! stays monotonic although the restarted relay's demo clock starts again from zero.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use clap::Parser;

/// A port free for both UDP and TCP on 127.0.0.1 (the relay serves both on one, as `http://` URLs expect).
fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A relay publishing its demo on `port`, until the returned sender is dropped.
async fn demo_relay(port: u16) -> tokio::sync::oneshot::Sender<()> {
    relay_on(port, true).await
}

/// A relay on `port` (QUIC and HTTP), with or without its demo, until the returned sender is dropped.
async fn relay_on(port: u16, demo: bool) -> tokio::sync::oneshot::Sender<()> {
    relay_with(port, demo, String::new()).await
}

/// A relay on `port` that names `goaway_uri` in the GOAWAY it sends when stopped.
async fn relay_with(port: u16, demo: bool, goaway_uri: String) -> tokio::sync::oneshot::Sender<()> {
    let config = moq_relay::Config {
        goaway_uri,
        bind: format!("127.0.0.1:{port}").parse().unwrap(),
        http_bind: format!("127.0.0.1:{port}"),
        demo,
        drain_timeout: Duration::from_millis(200),
        // A loaded test machine's late timers would make overload control skip groups.
        overload_lag: Duration::ZERO,
        ..moq_relay::Config::default()
    };
    // The previous relay on this port may take a moment to let go of its sockets.
    let mut tries = 0;
    let relay = loop {
        match moq_relay::Relay::bind(&config).await {
            Ok(r) => break r,
            Err(_) if tries < 50 => tries += 1,
            Err(e) => panic!("bind {port}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(relay.run(async {
        let _ = stopped.await;
    }));
    stop
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

async fn grows_past(path: &Path, bytes: u64, what: &str) {
    for _ in 0..1000 {
        if size(path) > bytes {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: the output stopped at {} bytes", size(path));
}

/// The video decode timestamps ffprobe reads from `path`.
fn video_dts(path: &Path) -> Vec<i64> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=dts", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.trim().parse().ok()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moq_sub_reconnects_and_continues_the_same_file() {
    let port = free_port();
    let first = demo_relay(port).await;
    let output = std::env::temp_dir().join(format!("moq-e2e-reconnect-{}.mp4", std::process::id()));
    let url = format!("http://localhost:{port}/");
    let args = ["moq-sub", url.as_str(), "--namespace", "demo/clip", "--duration", "6", "--stats"];
    let args = moq_sub::Args::try_parse_from(args).unwrap();
    let out = tokio::fs::File::create(&output).await.unwrap();
    let watcher = tokio::spawn(async move { moq_sub::watch(&args, out).await });

    grows_past(&output, 100_000, "before the restart").await;
    drop(first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let at_restart = size(&output);
    let _second = demo_relay(port).await;
    grows_past(&output, at_restart + 100_000, "after the restart").await;
    let watched = tokio::time::timeout(Duration::from_secs(20), watcher).await.expect("moq-sub finishes");
    watched.unwrap().expect("moq-sub reconnected and ended cleanly");

    let dts = video_dts(&output);
    assert!(dts.len() > 60, "only {} video frames", dts.len());
    assert!(dts.windows(2).all(|w| w[0] < w[1]), "decode times go back: {dts:?}");
    let _ = std::fs::remove_file(&output);
}

/// A relay taken down with `--goaway-uri` hands moq-sub to the relay it names: moq-sub moves there at once (a
/// migration, so even with `--no-reconnect`) and the file goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moq_sub_follows_the_relays_goaway_to_a_new_session() {
    let (first_port, second_port) = (free_port(), free_port());
    let _second = demo_relay(second_port).await;
    let first = relay_with(first_port, true, format!("http://localhost:{second_port}/")).await;
    let output = std::env::temp_dir().join(format!("moq-e2e-goaway-{}.mp4", std::process::id()));
    let url = format!("http://localhost:{first_port}/");
    let args = ["moq-sub", url.as_str(), "--namespace", "demo/clip", "--duration", "5", "--no-reconnect"];
    let args = moq_sub::Args::try_parse_from(args).unwrap();
    let out = tokio::fs::File::create(&output).await.unwrap();
    let watcher = tokio::spawn(async move { moq_sub::watch(&args, out).await });

    grows_past(&output, 100_000, "before the GOAWAY").await;
    drop(first);
    let at_goaway = size(&output);
    grows_past(&output, at_goaway + 100_000, "after the GOAWAY").await;
    let watched = tokio::time::timeout(Duration::from_secs(20), watcher).await.expect("moq-sub finishes");
    watched.unwrap().expect("moq-sub moved to the named relay and ended cleanly");
    let dts = video_dts(&output);
    assert!(dts.windows(2).all(|w| w[0] < w[1]), "decode times go back: {dts:?}");
    let _ = std::fs::remove_file(&output);
}

/// Waits until the relay at `url` serves the catalog of `namespace`.
async fn wait_for_broadcast(url: &str, namespace: &str) {
    let client =
        moq_transport::quic::Client::new(moq_transport::tls::Trust::System, moq_transport::SessionConfig::default())
            .unwrap();
    let url = url::Url::parse(url).unwrap();
    let ns = moq_transport::wire::namespace::TrackNamespace::from_path(namespace).unwrap();
    for _ in 0..200 {
        if let Ok(session) = client.connect(&url).await
            && moq_media::read_catalog(&session, &ns).await.is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the relay never served {namespace}");
}

/// Two seconds of 320x180 test pattern and tone as fragmented MP4, the way moq-pub reads it.
fn clip(path: &Path) {
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc=size=320x180:rate=30:duration=2"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p", "-bf", "0"])
        .args(["-g", "30", "-c:a", "libopus", "-f", "mp4"])
        .args(["-movflags", "cmaf+frag_every_frame+empty_moov+default_base_moof+skip_trailer"])
        .arg(path)
        .status()
        .expect("ffmpeg must be installed (apt-get install -y ffmpeg)");
    assert!(status.success(), "ffmpeg failed");
}

/// moq-pub and moq-sub both reconnect when the relay between them restarts: moq-pub announces its broadcast
/// again, moq-sub subscribes again, and the file goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moq_pub_announces_again_after_the_relay_restarts() {
    let port = free_port();
    let input = std::env::temp_dir().join(format!("moq-e2e-reconnect-in-{}.mp4", std::process::id()));
    let output = std::env::temp_dir().join(format!("moq-e2e-reconnect-pub-{}.mp4", std::process::id()));
    clip(&input);
    let first = relay_on(port, false).await;
    let url = format!("http://localhost:{port}/");
    let pub_args = ["moq-pub", url.as_str(), "--namespace", "live/pub", "--loop", "--input"];
    let pub_args = moq_pub::Args::try_parse_from(pub_args.iter().copied().chain([input.to_str().unwrap()])).unwrap();
    let publisher = tokio::spawn(moq_pub::run(pub_args));
    wait_for_broadcast(&url, "live/pub").await;
    let sub_args = ["moq-sub", url.as_str(), "--namespace", "live/pub", "--duration", "6"];
    let sub_args = moq_sub::Args::try_parse_from(sub_args).unwrap();
    let out = tokio::fs::File::create(&output).await.unwrap();
    let watcher = tokio::spawn(async move { moq_sub::watch(&sub_args, out).await });

    grows_past(&output, 20_000, "before the restart").await;
    drop(first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let at_restart = size(&output);
    let _second = relay_on(port, false).await;
    grows_past(&output, at_restart + 20_000, "after the restart").await;
    let watched = tokio::time::timeout(Duration::from_secs(20), watcher).await.expect("moq-sub finishes");
    watched.unwrap().expect("moq-sub reconnected and ended cleanly");
    assert!(!publisher.is_finished(), "moq-pub gave up: {:?}", publisher.await);
    publisher.abort();

    let dts = video_dts(&output);
    assert!(dts.windows(2).all(|w| w[0] < w[1]), "decode times go back: {dts:?}");
    let _ = std::fs::remove_file(&output);
    let _ = std::fs::remove_file(&input);
}

/// A relay taken down with `--goaway-uri` hands moq-pub to the relay it names: moq-pub publishes there before
/// leaving the old one, and the broadcast is served by the new relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moq_pub_follows_the_relays_goaway_to_a_new_session() {
    let (first_port, second_port) = (free_port(), free_port());
    let input = std::env::temp_dir().join(format!("moq-e2e-goaway-in-{}.mp4", std::process::id()));
    clip(&input);
    let _second = relay_on(second_port, false).await;
    let first = relay_with(first_port, false, format!("http://localhost:{second_port}/")).await;
    let url = format!("http://localhost:{first_port}/");
    let pub_args = ["moq-pub", url.as_str(), "--namespace", "live/pub", "--no-reconnect", "--loop", "--input"];
    let pub_args = moq_pub::Args::try_parse_from(pub_args.iter().copied().chain([input.to_str().unwrap()])).unwrap();
    let publisher = tokio::spawn(moq_pub::run(pub_args));
    wait_for_broadcast(&url, "live/pub").await;
    drop(first);
    wait_for_broadcast(&format!("http://localhost:{second_port}/"), "live/pub").await;
    assert!(!publisher.is_finished(), "moq-pub gave up: {:?}", publisher.await);
    publisher.abort();
    let _ = std::fs::remove_file(&input);
}

/// `moq-sub ... | ffprobe -`: the reader closes the pipe once it has seen enough, and moq-sub ends cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moq_sub_ends_cleanly_when_its_reader_goes_away() {
    use tokio::io::AsyncReadExt;
    let port = free_port();
    let _relay = demo_relay(port).await;
    let url = format!("http://localhost:{port}/");
    let args = moq_sub::Args::try_parse_from(["moq-sub", url.as_str(), "--namespace", "demo/clip"]).unwrap();
    // A socket pair, like a pipe: writing after the reader closed fails with EPIPE (a broken pipe).
    let (out, mut reader) = tokio::net::UnixStream::pair().unwrap();
    let watcher = tokio::spawn(async move { moq_sub::watch(&args, out).await });
    let mut seen = 0;
    let mut buf = vec![0u8; 16 * 1024];
    while seen < 50_000 {
        let n = tokio::time::timeout(Duration::from_secs(10), reader.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "moq-sub stopped writing");
        seen += n;
    }
    drop(reader);
    let watched = tokio::time::timeout(Duration::from_secs(10), watcher).await.expect("moq-sub finishes");
    watched.unwrap().expect("a closed output is a clean end");
}
