//! One direction's impairments, from text such as `delay=25ms,jitter=5ms,loss=1%,rate=20mbit,buffer=62500`.

use std::time::Duration;

use serde::Serialize;

/// A spec that could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpecError {
    /// A key this emulator does not know.
    #[error("unknown impairment `{0}` (known: delay, jitter, loss, ge, rate, buffer, dip)")]
    UnknownKey(String),
    /// A value that does not parse.
    #[error("bad value for `{key}`: `{value}` ({why})")]
    BadValue {
        /// The key.
        key: String,
        /// Its value.
        value: String,
        /// What was expected.
        why: &'static str,
    },
}

/// How packets are lost, independently of queueing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum Loss {
    /// No random loss.
    None,
    /// Each packet is lost with probability `p`.
    Bernoulli {
        /// Loss probability.
        p: f64,
    },
    /// Gilbert-Elliott with a lossless good state and a fully lossy bad state: per packet, good turns bad with
    /// probability `p` and bad turns good with `r`. Mean loss `p / (p + r)`, mean burst `1 / r` packets.
    GilbertElliott {
        /// Good-to-bad probability.
        p: f64,
        /// Bad-to-good probability.
        r: f64,
    },
}

/// A temporary change of the rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Dip {
    /// When it starts, from the emulator's start.
    #[serde(with = "serde_secs")]
    pub start: Duration,
    /// How long it lasts.
    #[serde(with = "serde_secs")]
    pub length: Duration,
    /// The rate meanwhile, bits per second.
    pub rate_bps: u64,
}

/// One direction's impairments.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkSpec {
    /// One-way propagation delay.
    #[serde(with = "serde_secs")]
    pub delay: Duration,
    /// Each packet's delay varies uniformly by up to this much either way, without reordering.
    #[serde(with = "serde_secs")]
    pub jitter: Duration,
    /// Random loss.
    pub loss: Loss,
    /// Bottleneck rate in bits per second; none is unlimited.
    pub rate_bps: Option<u64>,
    /// Drop-tail buffer in front of the bottleneck, in bytes (only with a rate).
    pub buffer_bytes: Option<u64>,
    /// A rate change for a while.
    pub dip: Option<Dip>,
}

mod serde_secs {
    pub fn serialize<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

impl Default for LinkSpec {
    fn default() -> Self {
        LinkSpec {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: Loss::None,
            rate_bps: None,
            buffer_bytes: None,
            dip: None,
        }
    }
}

fn bad(key: &str, value: &str, why: &'static str) -> SpecError {
    SpecError::BadValue { key: key.into(), value: value.into(), why }
}

fn duration(key: &str, v: &str) -> Result<Duration, SpecError> {
    humantime::parse_duration(v).map_err(|_| bad(key, v, "a duration such as 25ms"))
}

fn probability(key: &str, v: &str) -> Result<f64, SpecError> {
    let p = match v.strip_suffix('%') {
        Some(pct) => pct.parse::<f64>().map(|x| x / 100.0),
        None => v.parse::<f64>(),
    }
    .map_err(|_| bad(key, v, "a probability such as 1% or 0.01"))?;
    if (0.0..=1.0).contains(&p) { Ok(p) } else { Err(bad(key, v, "a probability between 0 and 1")) }
}

fn rate(key: &str, v: &str) -> Result<u64, SpecError> {
    let lower = v.to_ascii_lowercase();
    let (num, scale) = [("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1.0)]
        .iter()
        .find_map(|(unit, scale)| lower.strip_suffix(unit).map(|n| (n.to_string(), *scale)))
        .unwrap_or((lower.clone(), 1.0));
    let bps = num.parse::<f64>().map_err(|_| bad(key, v, "a rate such as 20mbit"))? * scale;
    if bps >= 1.0 { Ok(bps as u64) } else { Err(bad(key, v, "a rate of at least 1 bit/s")) }
}

impl std::str::FromStr for LinkSpec {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut spec = LinkSpec::default();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (key, value) = item.split_once('=').ok_or_else(|| bad(item, "", "key=value"))?;
            match key {
                "delay" => spec.delay = duration(key, value)?,
                "jitter" => spec.jitter = duration(key, value)?,
                "loss" => spec.loss = Loss::Bernoulli { p: probability(key, value)? },
                "ge" => {
                    let (p, r) = value.split_once('/').ok_or_else(|| bad(key, value, "P/R such as 0.5%/25%"))?;
                    let (p, r) = (probability(key, p)?, probability(key, r)?);
                    if r == 0.0 {
                        return Err(bad(key, value, "a bad-to-good probability above 0"));
                    }
                    spec.loss = Loss::GilbertElliott { p, r };
                }
                "rate" => spec.rate_bps = Some(rate(key, value)?),
                "buffer" => {
                    spec.buffer_bytes =
                        Some(value.parse().map_err(|_| bad(key, value, "a size in bytes such as 62500"))?)
                }
                "dip" => {
                    let (when, r) = value.split_once('@').ok_or_else(|| bad(key, value, "START+LENGTH@RATE"))?;
                    let (start, length) = when.split_once('+').ok_or_else(|| bad(key, value, "START+LENGTH@RATE"))?;
                    spec.dip = Some(Dip {
                        start: duration(key, start)?,
                        length: duration(key, length)?,
                        rate_bps: rate(key, r)?,
                    });
                }
                other => return Err(SpecError::UnknownKey(other.into())),
            }
        }
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_key() {
        let s: LinkSpec =
            "delay=25ms, jitter=5ms,loss=1%,rate=20mbit,buffer=62500,dip=20s+60s@2.4mbit".parse().unwrap();
        assert_eq!(s.delay, Duration::from_millis(25));
        assert_eq!(s.jitter, Duration::from_millis(5));
        assert_eq!(s.loss, Loss::Bernoulli { p: 0.01 });
        assert_eq!(s.rate_bps, Some(20_000_000));
        assert_eq!(s.buffer_bytes, Some(62_500));
        assert_eq!(
            s.dip,
            Some(Dip { start: Duration::from_secs(20), length: Duration::from_secs(60), rate_bps: 2_400_000 })
        );
        let ge: LinkSpec = "ge=0.5%/25%".parse().unwrap();
        assert_eq!(ge.loss, Loss::GilbertElliott { p: 0.005, r: 0.25 });
        assert_eq!("".parse::<LinkSpec>().unwrap(), LinkSpec::default());
    }

    #[test]
    fn refuses_what_it_cannot_emulate() {
        assert_eq!("color=red".parse::<LinkSpec>(), Err(SpecError::UnknownKey("color".into())));
        assert!("loss=150%".parse::<LinkSpec>().is_err());
        assert!("ge=1%/0".parse::<LinkSpec>().is_err());
        assert!("rate=fast".parse::<LinkSpec>().is_err());
        assert!("delay".parse::<LinkSpec>().is_err());
    }
}
