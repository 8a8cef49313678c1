//! TUN devices and the threads that carry packets between two of them through a [`Link`] per direction.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::link::{Link, Verdict};

/// `TUNSETIFF` from linux/if_tun.h.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;
/// Larger than any packet a 1500-byte MTU device hands us.
const MAX_PACKET: usize = 65_536;

#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// A TUN device (layer 3, no packet information header). It disappears when dropped.
#[derive(Debug)]
pub struct Tun {
    file: File,
    name: String,
}

fn ip(args: &[&str]) -> io::Result<()> {
    let status = Command::new("ip").args(args).status()?;
    if status.success() { Ok(()) } else { Err(io::Error::other(format!("`ip {}` failed: {status}", args.join(" ")))) }
}

impl Tun {
    /// Creates the device `name` (at most 15 bytes) in the current network namespace.
    pub fn create(name: &str) -> io::Result<Tun> {
        if name.len() >= libc::IFNAMSIZ {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("interface name too long: {name}")));
        }
        let file = File::options().read(true).write(true).open("/dev/net/tun")?;
        let mut req = IfReq { name: [0; libc::IFNAMSIZ], flags: IFF_TUN | IFF_NO_PI, _pad: [0; 22] };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: TUNSETIFF reads and writes an ifreq, which `req` is laid out as; the fd is open.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, &mut req) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Tun { file, name: name.to_string() })
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Moves the device into the network namespace `netns` and gives it `addr` with `peer` on the other end.
    pub fn place(&self, netns: &str, addr: Ipv4Addr, peer: Ipv4Addr) -> io::Result<()> {
        ip(&["link", "set", &self.name, "netns", netns])?;
        ip(&["-n", netns, "link", "set", "lo", "up"])?;
        ip(&["-n", netns, "addr", "add", &addr.to_string(), "peer", &format!("{peer}/32"), "dev", &self.name])?;
        ip(&["-n", netns, "link", "set", &self.name, "up"])
    }
}

/// Carries packets read from `from` through `link` into `to`, on two threads (a reader that decides, a writer
/// that waits for each packet's time), until either device fails.
pub fn forward(from: Arc<Tun>, to: Arc<Tun>, link: Arc<Mutex<Link>>, start: Instant) {
    let (tx, rx) = mpsc::channel::<(std::time::Duration, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; MAX_PACKET];
        loop {
            let n = match (&from.file).read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::error!(device = from.name(), error = %e, "tun read failed");
                    return;
                }
            };
            let verdict = match link.lock() {
                Ok(mut link) => link.offer(start.elapsed(), n),
                Err(_) => return,
            };
            if let Verdict::Deliver(at) = verdict
                && tx.send((at, buf[..n].to_vec())).is_err()
            {
                return;
            }
        }
    });
    std::thread::spawn(move || {
        for (at, packet) in rx {
            let wait = at.saturating_sub(start.elapsed());
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
            if let Err(e) = (&to.file).write(&packet) {
                // A packet the kernel refuses (the device going down) is lost like on a wire.
                tracing::debug!(device = to.name(), error = %e, "tun write failed");
            }
        }
    });
}
