//! eval-clip: the evaluation's source: ffmpeg's testsrc2 at 1280x720, 30 fps, every frame stamped with its number
//! (the stamp of web/src/media/stamp.ts), encoded once to H.264 baseline (keyframe every second, ~2.5 Mb/s) and
//! Opus, fragmented per frame.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use clap::Parser;

/// Makes the stamped clip.
#[derive(Debug, Parser)]
struct Args {
    /// Length in seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u32,
    /// Output file (fragmented MP4).
    #[arg(long)]
    out: PathBuf,
    /// Video bitrate, kb/s.
    #[arg(long, default_value_t = 2500)]
    video_kbps: u32,
}

const WIDTH: usize = 1280;
const HEIGHT: usize = 720;
const FPS: u32 = 30;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let secs = args.seconds.to_string();
    let mut source = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}:duration={secs}"))
        .args(["-f", "rawvideo", "-pix_fmt", "yuv420p", "-"])
        .stdout(Stdio::piped())
        .spawn()
        .context("running ffmpeg (apt-get install ffmpeg)")?;
    let kbps = args.video_kbps;
    let mut encoder = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s"])
        .arg(format!("{WIDTH}x{HEIGHT}"))
        .args(["-r", &FPS.to_string(), "-i", "-", "-f", "lavfi", "-i"])
        .arg(format!("sine=frequency=440:sample_rate=48000:duration={secs}"))
        .args(["-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-profile:v", "baseline"])
        .args(["-pix_fmt", "yuv420p", "-bf", "0", "-g", "30", "-keyint_min", "30", "-sc_threshold", "0"])
        .args(["-b:v", &format!("{kbps}k"), "-maxrate", &format!("{kbps}k"), "-bufsize", &format!("{}k", kbps / 2)])
        .args(["-c:a", "libopus", "-b:a", "64k", "-shortest", "-f", "mp4", "-movflags"])
        .arg("cmaf+frag_every_frame+empty_moov+default_base_moof+skip_trailer")
        .arg(&args.out)
        .stdin(Stdio::piped())
        .spawn()
        .context("running ffmpeg")?;
    let (Some(mut raw), Some(mut sink)) = (source.stdout.take(), encoder.stdin.take()) else {
        bail!("ffmpeg pipes missing");
    };
    let mut frame = vec![0u8; WIDTH * HEIGHT * 3 / 2];
    let mut n: u32 = 0;
    while read_frame(&mut raw, &mut frame)? {
        let media_ms = u64::from(n) * 1000 / u64::from(FPS);
        moq_eval::stamp::draw(&mut frame, WIDTH, HEIGHT, media_ms, n);
        sink.write_all(&frame).context("the encoder stopped")?;
        n += 1;
    }
    drop(sink);
    if !source.wait()?.success() || !encoder.wait()?.success() {
        bail!("ffmpeg failed");
    }
    eprintln!("eval-clip: {n} frames -> {}", args.out.display());
    Ok(())
}

/// Reads one whole frame; false at the end of the input.
fn read_frame(r: &mut impl Read, frame: &mut [u8]) -> anyhow::Result<bool> {
    let mut have = 0;
    while have < frame.len() {
        match r.read(&mut frame[have..])? {
            0 if have == 0 => return Ok(false),
            0 => bail!("a partial frame at the end of ffmpeg's output"),
            k => have += k,
        }
    }
    Ok(true)
}
