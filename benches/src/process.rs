//! A moq-relay child process for the load tools: started on loopback ports it picks itself, optionally inside a
//! CPU-limited cgroup, killed (and its cgroup removed) on drop.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader};

/// A running relay and what its ready line said.
pub struct RelayProcess {
    child: tokio::process::Child,
    cgroup: Option<PathBuf>,
    /// Its QUIC address.
    pub quic: String,
    /// Its HTTP address (/metrics, /certificate.sha256).
    pub http: String,
    /// Its certificate's SHA-256.
    pub fingerprint: String,
}

impl RelayProcess {
    /// Starts `bin` with `args`, limited to `cpu` cores if given, and waits for its ready line.
    pub async fn start(bin: &Path, args: &[String], cpu: Option<f64>) -> anyhow::Result<RelayProcess> {
        let cgroup = cpu.map(make_cgroup).transpose()?;
        let mut child = tokio::process::Command::new(bin)
            .args(["--bind", "127.0.0.1:0", "--http-bind", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let pid = child.id().context("relay pid")?;
        if let Some(dir) = &cgroup {
            std::fs::write(dir.join("cgroup.procs"), pid.to_string()).context("move the relay into its cgroup")?;
        }
        let mut lines = BufReader::new(child.stderr.take().context("relay stderr")?).lines();
        let ready = tokio::time::timeout(Duration::from_secs(10), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.strip_prefix("moq-relay ready: ") {
                    return Some(rest.to_string());
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .context("the relay never said it was ready")?;
        // Keep draining its stderr so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let field = |k: &str| {
            ready.split_whitespace().find_map(|f| f.strip_prefix(k)).map(str::to_string).context("ready line")
        };
        Ok(RelayProcess {
            child,
            cgroup,
            quic: field("quic=")?,
            http: field("http=")?,
            fingerprint: field("fingerprint=")?,
        })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or_default()
    }

    /// The MoQT URL to connect to.
    pub fn url(&self) -> anyhow::Result<url::Url> {
        Ok(format!("moqt://{}/", self.quic).parse()?)
    }

    /// One value of its /metrics.
    pub async fn metric(&self, name: &str) -> Option<u64> {
        let body = reqwest::get(format!("http://{}/metrics", self.http)).await.ok()?.text().await.ok()?;
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|v| v as u64)
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let Some(dir) = &self.cgroup else { return };
        // The cgroup can go once its last process has.
        for _ in 0..50 {
            if std::fs::remove_dir(dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A new cgroup with a CFS quota of `cores`: cgroup v2 (`cpu.max`) where its cpu controller is on, else v1.
fn make_cgroup(cores: f64) -> anyhow::Result<PathBuf> {
    let name = format!("moq-load-{}", std::process::id());
    // A short period keeps a throttled relay from stalling for long stretches (the default 100 ms would add up to
    // 100 ms of latency at any load).
    let period = 10_000u64;
    let quota = (cores * period as f64).round().max(1000.0) as u64;
    for (root, v2) in [("/sys/fs/cgroup", true), ("/sys/fs/cgroup/unified", true), ("/sys/fs/cgroup/cpu", false)] {
        let root = PathBuf::from(root);
        let has_cpu = if v2 {
            std::fs::read_to_string(root.join("cgroup.subtree_control"))
                .is_ok_and(|c| c.split_whitespace().any(|c| c == "cpu"))
        } else {
            root.join("cpu.cfs_quota_us").exists()
        };
        if !has_cpu {
            continue;
        }
        let dir = root.join(&name);
        let _ = std::fs::create_dir(&dir);
        let written = if v2 {
            std::fs::write(dir.join("cpu.max"), format!("{quota} {period}"))
        } else {
            std::fs::write(dir.join("cpu.cfs_period_us"), period.to_string())
                .and_then(|_| std::fs::write(dir.join("cpu.cfs_quota_us"), quota.to_string()))
        };
        written.with_context(|| format!("set the CPU quota in {}", dir.display()))?;
        return Ok(dir);
    }
    anyhow::bail!("no writable cgroup cpu controller (run as root on a machine with cgroups)")
}
