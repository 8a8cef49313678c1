//! eval-netem: a network emulator between two network namespaces (see `moq_eval::netem`).

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use moq_eval::netem::{Link, LinkSpec, tun};

/// Joins two existing network namespaces through a TUN device in each and a userspace impairment per
/// direction. Prints `ready` when packets can flow; writes counters to --stats every second and on SIGTERM.
#[derive(Debug, Parser)]
struct Args {
    /// The first namespace (the server side).
    #[arg(long)]
    ns_a: String,
    /// The second namespace (the viewer side).
    #[arg(long)]
    ns_b: String,
    /// Address in the first namespace.
    #[arg(long, default_value = "10.99.0.1")]
    addr_a: Ipv4Addr,
    /// Address in the second namespace.
    #[arg(long, default_value = "10.99.0.2")]
    addr_b: Ipv4Addr,
    /// Impairments from A to B, e.g. `delay=25ms,jitter=2ms,loss=1%,rate=20mbit,buffer=125000`.
    #[arg(long, default_value = "")]
    down: LinkSpec,
    /// Impairments from B to A.
    #[arg(long, default_value = "")]
    up: LinkSpec,
    /// Seed of the random decisions (each direction derives its own stream from it).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where to write the counters (JSON).
    #[arg(long)]
    stats: Option<PathBuf>,
    /// Device name prefix (the devices are PREFIXa and PREFIXb); default from the process id.
    #[arg(long)]
    prefix: Option<String>,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn stats(down: &Mutex<Link>, up: &Mutex<Link>, seed: u64) -> serde_json::Value {
    let side = |l: &Mutex<Link>| match l.lock() {
        Ok(l) => {
            let mut v = serde_json::to_value(l.counters()).unwrap_or_default();
            v["spec"] = serde_json::to_value(l.spec()).unwrap_or_default();
            v
        }
        Err(_) => serde_json::Value::Null,
    };
    serde_json::json!({ "seed": seed, "down": side(down), "up": side(up) })
}

fn main() -> anyhow::Result<()> {
    moq_transport::cli::init_logging("warn");
    let args = Args::parse();
    let prefix = args.prefix.clone().unwrap_or_else(|| format!("ev{}", std::process::id()));
    let a = Arc::new(tun::Tun::create(&format!("{prefix}a")).context("creating the TUN device (root?)")?);
    let b = Arc::new(tun::Tun::create(&format!("{prefix}b")).context("creating the TUN device (root?)")?);
    a.place(&args.ns_a, args.addr_a, args.addr_b).with_context(|| format!("placing {} in {}", a.name(), args.ns_a))?;
    b.place(&args.ns_b, args.addr_b, args.addr_a).with_context(|| format!("placing {} in {}", b.name(), args.ns_b))?;
    let down = Arc::new(Mutex::new(Link::new(args.down.clone(), args.seed.wrapping_mul(2))));
    let up = Arc::new(Mutex::new(Link::new(args.up.clone(), args.seed.wrapping_mul(2).wrapping_add(1))));
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
    }
    let start = Instant::now();
    tun::forward(a.clone(), b.clone(), down.clone(), start);
    tun::forward(b.clone(), a.clone(), up.clone(), start);
    println!("ready");
    let write = |v: serde_json::Value| {
        if let Some(path) = &args.stats {
            let tmp = path.with_extension("tmp");
            if std::fs::write(&tmp, v.to_string()).and_then(|_| std::fs::rename(&tmp, path)).is_err() {
                tracing::warn!(path = %path.display(), "could not write the counters");
            }
        }
    };
    let mut last_write = Instant::now();
    while !STOP.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
        if last_write.elapsed() >= Duration::from_secs(1) {
            write(stats(&down, &up, args.seed));
            last_write = Instant::now();
        }
    }
    let v = stats(&down, &up, args.seed);
    write(v.clone());
    eprintln!("eval-netem: {v}");
    Ok(())
}
