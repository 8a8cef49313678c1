//! ffmpeg -> moq-pub -> moq-relay -> moq-sub -> ffprobe, in one process (the apps' library entry points, with
//! the publisher's stdin replaced by a pipe the test controls). Needs ffmpeg and ffprobe on PATH (`.ci/run`
//! installs them).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Parser;
use moq_media::mp4::{Demuxer, Event};
use moq_transport::wire::namespace::TrackNamespace;
use tokio::io::AsyncWriteExt;

/// A scratch directory removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("moq-e2e-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The encoder settings of docs/media.md: baseline H.264 with a keyframe every 30 frames, Opus, a fragment per frame.
const ENCODE: &[&str] = &[
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",
    "-tune",
    "zerolatency",
    "-pix_fmt",
    "yuv420p",
    "-profile:v",
    "baseline",
    "-bf",
    "0",
    "-g",
    "30",
    "-keyint_min",
    "30",
    "-sc_threshold",
    "0",
    "-c:a",
    "libopus",
    "-b:a",
    "48k",
    "-f",
    "mp4",
    "-movflags",
    "cmaf+frag_every_frame+empty_moov+default_base_moof+skip_trailer",
];

/// Encodes `seconds` of test pattern and tone; `video` is extra arguments choosing the video streams, `tail`
/// overrides the encoder settings.
fn encode(dir: &Scratch, name: &str, seconds: u32, video: &[&str], tail: &[&str]) -> PathBuf {
    let out = dir.path(name);
    let src = format!("testsrc=size=320x180:rate=30:duration={seconds}");
    let tone = format!("sine=frequency=440:sample_rate=48000:duration={seconds}");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", &src, "-f", "lavfi", "-i", &tone]);
    cmd.args(video).args(ENCODE).args(tail).arg(&out);
    let status = cmd.status().expect("ffmpeg must be installed (apt-get install -y ffmpeg)");
    assert!(status.success(), "ffmpeg failed");
    out
}

#[derive(Debug, PartialEq)]
struct Stream {
    codec: String,
    kind: String,
    packets: u64,
    width: u64,
    height: u64,
}

/// The streams of an MP4 file as ffprobe sees them, with their packet counts.
fn probe(path: &Path) -> Vec<Stream> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_packets", "-show_streams", "-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe must be installed");
    assert!(out.status.success(), "ffprobe {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Stream {
            codec: s["codec_name"].as_str().unwrap_or_default().into(),
            kind: s["codec_type"].as_str().unwrap_or_default().into(),
            packets: s["nb_read_packets"].as_str().and_then(|n| n.parse().ok()).unwrap_or(0),
            width: s["width"].as_u64().unwrap_or(0),
            height: s["height"].as_u64().unwrap_or(0),
        })
        .collect()
}

/// How many video frames ffmpeg decodes from a file (and whether it decoded without errors).
fn decoded_video_frames(path: &Path) -> (u64, String) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames"])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    let frames = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0);
    (frames, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Whether the first video packet of a file is a keyframe.
fn starts_with_keyframe(path: &Path) -> bool {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=flags", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().next().is_some_and(|f| f.starts_with('K'))
}

/// An fMP4 file cut into pieces.
struct Split {
    /// ftyp + moov.
    init: Vec<u8>,
    /// moof + mdat pairs, each with its track ID.
    fragments: Vec<(u32, Vec<u8>)>,
    /// The first video track's ID.
    video: u32,
}

fn split(bytes: &[u8]) -> Split {
    let mut boxes = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        boxes.push((&bytes[at + 4..at + 8], &bytes[at..at + size]));
        at += size;
    }
    let first_moof = boxes.iter().position(|(k, _)| *k == b"moof").unwrap();
    let init: Vec<u8> = boxes[..first_moof].iter().flat_map(|(_, b)| b.to_vec()).collect();
    let mut demuxer = Demuxer::new();
    demuxer.push(&init).unwrap();
    let video = demuxer.tracks().iter().find(|t| t.config.kind == moq_media::mp4::Kind::Video).unwrap().id;
    let fragments = boxes[first_moof..]
        .chunks(2)
        .map(|pair| {
            let bytes: Vec<u8> = pair.iter().flat_map(|(_, b)| b.to_vec()).collect();
            let track = demuxer
                .push(&bytes)
                .unwrap()
                .into_iter()
                .find_map(|e| match e {
                    Event::Sample(s) => Some(s.track_id),
                    Event::Init(_) => None,
                })
                .unwrap();
            (track, bytes)
        })
        .collect();
    Split { init, fragments, video }
}

struct Relay {
    port: u16,
    fingerprint: String,
    metrics: Arc<moq_relay::Metrics>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn relay() -> Relay {
    let config = moq_relay::Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        http_bind: String::new(),
        // A loaded test machine's late timers would make overload control skip groups.
        overload_lag: std::time::Duration::ZERO,
        ..moq_relay::Config::default()
    };
    let relay = moq_relay::Relay::bind(&config).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let r = Relay {
        port: relay.local_addr().unwrap().port(),
        fingerprint: relay.fingerprint().to_string(),
        metrics: relay.metrics(),
        _stop: stop,
    };
    tokio::spawn(relay.run(async {
        let _ = stopped.await;
    }));
    r
}

/// Waits until `counter` reaches `n`.
async fn until(what: &str, counter: &std::sync::atomic::AtomicU64, n: u64) {
    for _ in 0..500 {
        if counter.load(Ordering::Relaxed) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what} (have {}, want {n})", counter.load(Ordering::Relaxed));
}

/// Publishes `input` with moq-pub through a relay to moq-sub, which writes `output`.
///
/// The publisher gets the init segment and plays the first `early_video_frames` video frames (with the audio
/// around them) before moq-sub subscribes to `tracks` media tracks; the rest after.
async fn pipeline(
    input: &Path,
    output: &Path,
    pub_args: &[&str],
    sub_args: &[&str],
    early_video_frames: usize,
    tracks: u64,
) {
    let relay = relay().await;
    let url = format!("moqt://localhost:{}/", relay.port);
    let common = ["--namespace", "test/e2e", "--fingerprint", relay.fingerprint.as_str()];
    // In real time, as from a live encoder: a subscriber joins at the live edge, so a publisher that bursts
    // seconds of media at once would have moved past the first groups before the subscriber's SUBSCRIBE lands.
    let paced = ["--pace", "on"];
    let pub_args =
        moq_pub::Args::try_parse_from(["moq-pub", url.as_str()].iter().chain(&common).chain(&paced).chain(pub_args))
            .unwrap();
    let sub_args =
        moq_sub::Args::try_parse_from(["moq-sub", url.as_str()].iter().chain(&common).chain(sub_args)).unwrap();

    let bytes = std::fs::read(input).unwrap();
    let Split { init, fragments, video: video_id } = split(&bytes);
    let (pipe_out, mut pipe_in) = tokio::io::duplex(1 << 20);
    let publisher = tokio::spawn(async move {
        let ns = TrackNamespace::from_path("test/e2e").unwrap();
        moq_pub::publish(&pub_args, ns, &mut moq_media::Input::new(pipe_out), false).await
    });
    pipe_in.write_all(&init).await.unwrap();
    let mut rest = fragments.iter();
    let mut video = 0;
    for (track, bytes) in rest.by_ref() {
        if *track == video_id {
            if video == early_video_frames {
                pipe_in.write_all(bytes).await.unwrap();
                break;
            }
            video += 1;
        }
        pipe_in.write_all(bytes).await.unwrap();
    }
    until("the publisher's announcement", &relay.metrics.announcements, 1).await;
    // Let the publisher play the early frames.
    tokio::time::sleep(Duration::from_millis(early_video_frames as u64 * 1000 / 30 + 50)).await;
    let out = tokio::fs::File::create(output).await.unwrap();
    let subscriber = tokio::spawn(async move { moq_sub::watch(&sub_args, out).await });
    // The catalog and each media track: once the relay subscribed upstream, what follows reaches moq-sub.
    until("moq-sub's subscriptions", &relay.metrics.upstream_subscriptions, 1 + tracks).await;
    for (_, bytes) in rest {
        pipe_in.write_all(bytes).await.unwrap();
    }
    drop(pipe_in);
    let published = tokio::time::timeout(Duration::from_secs(20), publisher).await.expect("moq-pub finishes");
    published.unwrap().expect("moq-pub succeeds");
    let watched = tokio::time::timeout(Duration::from_secs(20), subscriber).await.expect("moq-sub finishes");
    watched.unwrap().expect("moq-sub succeeds");
}

async fn every_frame_arrives(packaging: &str) {
    let dir = Scratch::new(&format!("every-frame-{packaging}"));
    let input = encode(&dir, "in.mp4", 3, &[], &[]);
    let output = dir.path("out.mp4");
    pipeline(&input, &output, &["--packaging", packaging], &["--stats"], 0, 2).await;
    let (want, got) = (probe(&input), probe(&output));
    assert_eq!(want.len(), 2, "{want:?}");
    assert_eq!(got, want, "same codecs, sizes and frame/packet counts");
    assert_eq!(got[0].codec, "h264");
    assert_eq!(got[1].codec, "opus");
    assert!(starts_with_keyframe(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loc_every_frame_arrives() {
    every_frame_arrives("loc").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cmaf_every_frame_arrives() {
    every_frame_arrives("cmaf").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renditions_are_separate_tracks() {
    let dir = Scratch::new("renditions");
    let video =
        ["-filter_complex", "[0:v]split=2[hi][x];[x]scale=160:90[lo]", "-map", "[hi]", "-map", "[lo]", "-map", "1:a"];
    let input = encode(&dir, "in.mp4", 2, &video, &[]);
    let want = probe(&input);
    assert_eq!(want.len(), 3, "{want:?}");
    let output = dir.path("low.mp4");
    pipeline(&input, &output, &[], &["--rendition", "90p"], 0, 2).await;
    let got = probe(&output);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0], want[1], "the 160x90 rendition, every frame");
    assert_eq!(got[1], want[2], "and the audio");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_joiner_starts_at_a_keyframe() {
    let dir = Scratch::new("late");
    let input = encode(&dir, "in.mp4", 3, &[], &[]);
    let output = dir.path("out.mp4");
    // Join mid-way through the second group (frames 30..59).
    pipeline(&input, &output, &[], &["--no-audio", "--stats"], 45, 1).await;
    let got = probe(&output);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(starts_with_keyframe(&output), "the output starts at a keyframe");
    assert_eq!(got[0].packets, 90 - 30, "from the start of the group being published when it joined");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_frames_decode_in_both_packagings() {
    let dir = Scratch::new("b-frames");
    let input = encode(&dir, "in.mp4", 2, &[], &["-profile:v", "main", "-bf", "2"]);
    let (want, errors) = decoded_video_frames(&input);
    assert_eq!((want, errors.as_str()), (60, ""));
    for packaging in ["loc", "cmaf"] {
        let output = dir.path(&format!("{packaging}.mp4"));
        pipeline(&input, &output, &["--packaging", packaging], &[], 0, 2).await;
        let (frames, errors) = decoded_video_frames(&output);
        assert_eq!(frames, want, "{packaging}: every frame decodes");
        assert!(errors.is_empty(), "{packaging}: {errors}");
    }
}

/// An output that stalls once, for `stall`, on its first write after the init segment (a player that paused).
struct StallingOutput {
    bytes: Vec<u8>,
    writes: usize,
    stall: Duration,
    sleep: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl tokio::io::AsyncWrite for StallingOutput {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.writes == 1 {
            use std::future::Future;
            let stall = this.stall;
            let sleep = this.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
            std::task::ready!(sleep.as_mut().poll(cx));
        }
        this.writes += 1;
        this.bytes.extend_from_slice(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_viewer_skips_to_the_live_edge() {
    let relay = relay().await;
    let url = format!("moqt://localhost:{}/", relay.port);
    let pub_args = moq_pub::Args::try_parse_from([
        "moq-pub",
        url.as_str(),
        "--namespace",
        "test/stall",
        "--fingerprint",
        relay.fingerprint.as_str(),
        "--pace",
        "on",
    ])
    .unwrap();
    let publisher = tokio::spawn(async move {
        let ns = TrackNamespace::from_path("test/stall").unwrap();
        moq_pub::publish(&pub_args, ns, &mut moq_media::Input::new(moq_media::DEMO_CLIP), false).await
    });
    until("the publisher's announcement", &relay.metrics.announcements, 1).await;
    let client = moq_transport::cli::ClientArgs { fingerprint: Some(relay.fingerprint.clone()), ..Default::default() }
        .client(moq_transport::SessionConfig::default())
        .unwrap();
    let session = client.connect(&url.parse().unwrap()).await.unwrap();
    let options = moq_media::WatchOptions {
        selection: moq_media::Selection { no_audio: true, ..Default::default() },
        max_latency: Some(Duration::from_millis(300)),
        ..Default::default()
    };
    // The 4 s clip has a keyframe every second; the viewer stalls for 2 s right after its first frame.
    let mut output = StallingOutput { bytes: Vec::new(), writes: 0, stall: Duration::from_secs(2), sleep: None };
    let ns = TrackNamespace::from_path("test/stall").unwrap();
    let stats = tokio::time::timeout(Duration::from_secs(20), moq_media::watch(&session, &ns, &options, &mut output))
        .await
        .expect("the broadcast ends")
        .unwrap();
    publisher.await.unwrap().unwrap();

    let mut demuxer = Demuxer::new();
    let frames: Vec<_> = demuxer
        .push(&output.bytes)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e {
            Event::Sample(s) => Some(s),
            Event::Init(_) => None,
        })
        .collect();
    assert!(stats[0].skipped >= 1, "the stalled track skipped ahead: {:?}", stats[0]);
    assert!(frames.len() < 100, "skipped frames are not written: {} of 120", frames.len());
    assert!(frames.len() >= 30, "the newest group is written whole: {}", frames.len());
    // Every run of frames written starts at a keyframe: the frame after a gap in time is a keyframe.
    assert!(frames[0].keyframe);
    let step = frames[1].dts - frames[0].dts;
    for w in frames.windows(2) {
        if w[1].dts - w[0].dts > 2 * step {
            assert!(w[1].keyframe, "after a skip the output resumes at a keyframe");
        }
    }
}
