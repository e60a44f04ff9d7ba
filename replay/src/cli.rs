//! The command line: raw arguments ([`Args`], clap) and their validation
//! into a [`Request`] (times resolved against one `now`, topics known,
//! `--out` only with `--output lp`). [`command`] is the clap command that man
//! pages and shell completions are generated from.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{CommandFactory, Parser, ValueEnum};
use netprobe_wire::{ProbeType, Topic};

use crate::filter::Filter;
use crate::Error;

/// Default grace after `--end` for messages that reached Kafka late.
pub const DEFAULT_LATE_GRACE: Duration = Duration::from_secs(5 * 60);

const EXAMPLES: &str = "\
Examples:
  # After an InfluxDB outage: re-write the last 6 hours of every probe topic
  netprobe-replay --config /etc/netprobe/replay.toml --start 6h

  # Copy one day of two agents' ICMP and HTTP results into an analysis bucket
  netprobe-replay --start 2026-11-20T00:00:00Z --end 2026-11-21T00:00:00Z \\
      --probe-id pop-fra-01 --probe-id pop-ams-01 --metric-type icmp --metric-type http \\
      --bucket historical_metrics

  # Only count what a range holds (nothing is written)
  netprobe-replay --start 24h --target 192.0.2.10 --dry-run

  # Line protocol to a file for inspection instead of InfluxDB
  netprobe-replay --start 2h --topics dns.metrics --output lp --out /tmp/dns.lp

  # Re-drive dead-lettered messages after a fix, gently
  netprobe-replay --topics ingest.dlq --start 7d --max-rate 500

Exit status: 0 done, 1 failed part-way (the summary says which --start to
resume from), 2 bad arguments or config.";

/// Re-ingests a filtered time range from Kafka into InfluxDB v2 (a bounded
/// ingest: same decoding and points as netprobe-ingest, no consumer group,
/// nothing committed).
#[derive(Debug, Clone, Parser)]
#[command(name = "netprobe-replay", version, about, after_help = EXAMPLES)]
pub struct Args {
    /// Replay config: TOML with [kafka] (the `replay` principal), [influx]
    /// and an optional [replay] table.
    #[arg(long, value_name = "FILE", default_value = "/etc/netprobe/replay.toml")]
    pub config: PathBuf,
    /// Topics to read, comma-separated, without the config's topic_prefix
    /// [default: the seven probe topics]. `ingest.dlq` re-drives the DLQ.
    #[arg(long, value_name = "TOPIC,...", value_delimiter = ',')]
    pub topics: Vec<String>,
    /// Only messages of this agent (repeatable).
    #[arg(long = "probe-id", value_name = "ID")]
    pub probe_ids: Vec<String>,
    /// Only messages of this kind (repeatable).
    #[arg(long = "metric-type", value_name = "TYPE", value_enum)]
    pub metric_types: Vec<MetricType>,
    /// Only messages about this target (repeatable): the icmp/mtr target,
    /// the http url, the dns resolver or the bgp prefix, exactly.
    #[arg(long = "target", value_name = "T")]
    pub targets: Vec<String>,
    /// Start of the range (inclusive), by the message's own timestamp:
    /// RFC 3339 (`2026-11-20T00:00:00Z`) or a duration before now (`24h`).
    #[arg(long, value_name = "TIME")]
    pub start: String,
    /// End of the range (exclusive), same forms as --start [default: now].
    #[arg(long, value_name = "TIME")]
    pub end: Option<String>,
    /// Write into this bucket instead of the config's [influx] bucket.
    #[arg(long, value_name = "NAME")]
    pub bucket: Option<String>,
    /// Read, filter and count; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Where points go.
    #[arg(long, value_name = "KIND", value_enum, default_value_t = OutputKind::Influx)]
    pub output: OutputKind,
    /// With --output lp: the file to write [default: stdout].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Messages written per second at most, so a backfill leaves InfluxDB
    /// to the live ingest [default: unlimited].
    #[arg(long, value_name = "N")]
    pub max_rate: Option<NonZeroU32>,
    /// How long after --end (by Kafka timestamp) a partition is still read
    /// for messages that reached Kafka late (spooled by an agent).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    pub late_grace: Duration,
}

/// The clap command of [`Args`], for man pages and shell completions.
pub fn command() -> clap::Command {
    Args::command()
}

/// `--metric-type` values: the wire `probe_type`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[allow(missing_docs)]
pub enum MetricType {
    Icmp,
    Dns,
    Http,
    Mtr,
    Bgp,
    Registry,
    Health,
}

impl From<MetricType> for ProbeType {
    fn from(t: MetricType) -> ProbeType {
        match t {
            MetricType::Icmp => ProbeType::Icmp,
            MetricType::Dns => ProbeType::Dns,
            MetricType::Http => ProbeType::Http,
            MetricType::Mtr => ProbeType::Mtr,
            MetricType::Bgp => ProbeType::Bgp,
            MetricType::Registry => ProbeType::Registry,
            MetricType::Health => ProbeType::Health,
        }
    }
}

/// `--output` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputKind {
    /// Write to InfluxDB (`/api/v2/write`).
    Influx,
    /// Write line protocol to `--out` or stdout.
    Lp,
}

/// Where the points of a replay go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// InfluxDB, into `bucket` (or the config's bucket when `None`).
    Influx {
        /// The `--bucket` override.
        bucket: Option<String>,
    },
    /// Line protocol to this file, or stdout when `None`.
    LineProtocol(Option<PathBuf>),
    /// Nowhere: `--dry-run`.
    DryRun,
}

/// A validated replay request.
#[derive(Debug, Clone)]
pub struct Request {
    /// Topics to read (the config's prefix is added when connecting).
    pub topics: Vec<Topic>,
    /// Which messages are written.
    pub filter: Filter,
    /// Where points go.
    pub output: Output,
    /// Messages per second at most.
    pub max_rate: Option<NonZeroU32>,
    /// Grace after the end for late messages (Kafka timestamp).
    pub late_grace: Duration,
}

impl Args {
    /// Validates the arguments, resolving relative times against `now`.
    ///
    /// # Errors
    /// [`Error::Usage`] naming the argument: an unparseable time, an end not
    /// after the start, an unknown topic, `--out` without `--output lp`.
    pub fn request(&self, now: DateTime<Utc>) -> Result<Request, Error> {
        let start = parse_time("--start", &self.start, now)?;
        let end = match &self.end {
            Some(e) => parse_time("--end", e, now)?,
            None => now,
        };
        if end <= start {
            return Err(Error::Usage(format!(
                "--end {} is not after --start {}",
                end.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                start.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            )));
        }
        let topics = if self.topics.is_empty() {
            Topic::PROBE_TOPICS.to_vec()
        } else {
            let mut topics = Vec::new();
            for name in &self.topics {
                let topic = Topic::from_name("", name.trim()).ok_or_else(|| {
                    let known: Vec<&str> =
                        Topic::PROBE_TOPICS.iter().chain([&Topic::Dlq]).map(Topic::base_name).collect();
                    Error::Usage(format!("--topics: unknown topic {name:?} (known: {})", known.join(", ")))
                })?;
                if !topics.contains(&topic) {
                    topics.push(topic);
                }
            }
            topics
        };
        let output = match (self.dry_run, self.output, &self.out) {
            (_, OutputKind::Influx, Some(_)) => {
                return Err(Error::Usage("--out needs --output lp".into()));
            }
            (true, _, _) => Output::DryRun,
            (false, OutputKind::Influx, None) => Output::Influx { bucket: self.bucket.clone() },
            (false, OutputKind::Lp, out) => Output::LineProtocol(out.clone()),
        };
        if matches!(self.bucket.as_deref(), Some("")) {
            return Err(Error::Usage("--bucket must not be empty".into()));
        }
        let filter = Filter {
            probe_ids: self.probe_ids.clone(),
            probe_types: self.metric_types.iter().map(|&t| t.into()).collect(),
            targets: self.targets.clone(),
            start,
            end,
        };
        Ok(Request { topics, filter, output, max_rate: self.max_rate, late_grace: self.late_grace })
    }
}

/// Parses `--start`/`--end`: RFC 3339, `now`, or a humantime duration
/// before `now` (`24h`, `90m`, `7d`).
///
/// # Errors
/// [`Error::Usage`] naming `arg` and the value.
pub fn parse_time(arg: &str, value: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, Error> {
    let value = value.trim();
    if value == "now" {
        return Ok(now);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    let ago = humantime::parse_duration(value).map_err(|_| {
        Error::Usage(format!(
            "{arg} {value:?}: neither RFC 3339 (2026-11-20T00:00:00Z) nor a duration before now (24h, 90m)"
        ))
    })?;
    chrono::Duration::from_std(ago)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .ok_or_else(|| Error::Usage(format!("{arg} {value:?}: too far in the past")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Result<Args, clap::Error> {
        let mut argv = vec!["netprobe-replay"];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv)
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z").expect("time").with_timezone(&Utc)
    }

    #[test]
    fn relative_and_absolute_times() {
        let r = args(&["--start", "24h"]).expect("args").request(now()).expect("valid");
        assert_eq!(r.filter.start.to_rfc3339(), "2026-11-22T12:00:00+00:00");
        assert_eq!(r.filter.end, now());
        let r = args(&["--start", "2026-11-23T10:00:00+01:00", "--end", "90m"]).expect("args").request(now());
        let r = r.expect("valid");
        assert_eq!(r.filter.start.to_rfc3339(), "2026-11-23T09:00:00+00:00");
        assert_eq!(r.filter.end.to_rfc3339(), "2026-11-23T10:30:00+00:00");
        assert_eq!(r.topics, Topic::PROBE_TOPICS.to_vec());
        assert_eq!(r.output, Output::Influx { bucket: None });
    }

    #[test]
    fn bad_arguments_are_usage_errors_naming_the_argument() {
        let cases: [(&[&str], &str); 5] = [
            (&["--start", "yesterday"], "--start \"yesterday\""),
            (&["--start", "1h", "--end", "2h"], "is not after --start"),
            (&["--start", "1h", "--topics", "icmp.metrics,tcp.metrics"], "unknown topic \"tcp.metrics\""),
            (&["--start", "1h", "--out", "/tmp/x"], "--out needs --output lp"),
            (&["--start", "1h", "--end", "2026-13-01T00:00:00Z"], "--end \"2026-13-01T00:00:00Z\""),
        ];
        for (argv, want) in cases {
            let err = args(argv).expect("clap accepts").request(now()).expect_err("invalid");
            assert!(matches!(err, Error::Usage(_)), "{err:?}");
            let text = err.to_string();
            assert!(text.contains(want) && !text.contains('\n'), "{argv:?}: {text}");
        }
    }

    #[test]
    fn dlq_topic_outputs_and_filters() {
        let r = args(&[
            "--start",
            "1h",
            "--topics",
            "ingest.dlq",
            "--output",
            "lp",
            "--out",
            "/tmp/x.lp",
            "--metric-type",
            "icmp",
            "--probe-id",
            "a",
            "--probe-id",
            "b",
        ])
        .expect("args")
        .request(now())
        .expect("valid");
        assert_eq!(r.topics, vec![Topic::Dlq]);
        assert_eq!(r.output, Output::LineProtocol(Some("/tmp/x.lp".into())));
        assert_eq!(r.filter.probe_types, vec![ProbeType::Icmp]);
        assert_eq!(r.filter.probe_ids, vec!["a".to_owned(), "b".to_owned()]);
        let r = args(&["--start", "1h", "--dry-run", "--bucket", "h"]).expect("args").request(now()).expect("ok");
        assert_eq!(r.output, Output::DryRun);
    }

    #[test]
    fn help_shows_examples() {
        let help = command().render_long_help().to_string();
        assert!(help.contains("Examples:") && help.contains("--topics ingest.dlq"), "{help}");
        command().debug_assert();
    }
}
