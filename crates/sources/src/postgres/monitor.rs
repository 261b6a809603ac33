//! The slot's health, read on its own plain session every `slot_check_interval_ms`: how much WAL the slot
//! keeps on the server (`degraded` past `max_retained_wal_bytes`), how far its confirmed position is
//! behind the server (in bytes and seconds, for `/v1/sources` and the `tributary_source_lag_*` gauges),
//! and whether that position stopped moving while the server writes (`stalled` after
//! `slot_stall_after_ms`).

use super::PostgresSourceConfig;
use super::connect::Target;
use super::pgoutput::Lsn;
use serde_json::json;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tributary_core::{Lag, SourceReport};

/// Most server positions remembered for `lag_seconds` (older ones are merged away).
const MAX_SAMPLES: usize = 1024;

/// One reading of `pg_replication_slots` and the server's position.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SlotReading {
    /// The server's current WAL position.
    pub server: Lsn,
    /// What the slot confirmed as stored.
    pub confirmed: Option<Lsn>,
    /// The oldest WAL the slot still needs.
    pub restart: Option<Lsn>,
    /// A session streams from it.
    pub active: bool,
}

/// What a reading means, given the ones before it.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// WAL the server keeps for the slot.
    pub retained_bytes: u64,
    /// Server position minus confirmed position.
    pub lag_bytes: u64,
    /// How long the oldest unconfirmed WAL has waited (to within one check).
    pub lag_seconds: f64,
    /// Too much retained WAL: why.
    pub degraded: Option<String>,
    /// No progress while the server has WAL past the slot: why.
    pub stalled: Option<String>,
}

/// The judge of successive readings (pure: the times are given, so it is tested without a server).
#[derive(Debug)]
pub struct Judge {
    max_retained: u64,
    stall_after: Duration,
    /// (server position, when it was first seen), oldest first.
    samples: VecDeque<(Lsn, Instant)>,
    /// The confirmed position and since when it has not moved.
    confirmed: Option<(Lsn, Instant)>,
}

impl Judge {
    /// A judge with the source's thresholds.
    pub fn new(max_retained: u64, stall_after: Duration) -> Self {
        Self {
            max_retained,
            stall_after,
            samples: VecDeque::new(),
            confirmed: None,
        }
    }

    /// Judges a reading taken at `now`.
    pub fn judge(&mut self, r: SlotReading, now: Instant) -> Verdict {
        let confirmed = r.confirmed.unwrap_or_default();
        let retained_bytes = r.restart.map_or(0, |x| r.server.0.saturating_sub(x.0));
        let lag_bytes = r.server.0.saturating_sub(confirmed.0);
        if self.samples.back().is_none_or(|(lsn, _)| *lsn < r.server) {
            if self.samples.len() >= MAX_SAMPLES {
                // Keep the oldest (it dates the lag) and thin the rest.
                self.samples.remove(1);
            }
            self.samples.push_back((r.server, now));
        }
        // Positions the slot confirmed are no longer waiting; the oldest one left says since when WAL waits.
        while self.samples.front().is_some_and(|(lsn, _)| *lsn <= confirmed) {
            self.samples.pop_front();
        }
        let lag_seconds = match self.samples.front() {
            Some((_, since)) if lag_bytes > 0 => now.duration_since(*since).as_secs_f64(),
            _ => 0.0,
        };
        match self.confirmed {
            Some((lsn, _)) if lsn == confirmed => {}
            _ => self.confirmed = Some((confirmed, now)),
        }
        // Stalled: WAL has waited past the slot for `stall_after` and the slot has not moved meanwhile.
        let unmoved = self
            .confirmed
            .map_or(Duration::ZERO, |(_, since)| now.duration_since(since));
        let still_for = unmoved.min(Duration::from_secs_f64(lag_seconds));
        let stalled = (lag_bytes > 0 && still_for >= self.stall_after).then(|| {
            format!(
                "the slot's confirmed position {confirmed} has not moved for {}s while the server wrote past it (now at {}, {lag_bytes} bytes ahead){}; check the source's errors and the store",
                still_for.as_secs(),
                r.server,
                if r.active { "" } else { ", and no session streams from it" }
            )
        });
        let degraded = (retained_bytes > self.max_retained).then(|| {
            format!(
                "the slot keeps {retained_bytes} bytes of WAL on the server, more than max_retained_wal_bytes = {}; PostgreSQL cannot recycle it until the slot moves (a long transaction, a stopped source, or a slow store)",
                self.max_retained
            )
        });
        Verdict {
            retained_bytes,
            lag_bytes,
            lag_seconds,
            degraded,
            stalled,
        }
    }
}

/// The report part the slot's state is shown under.
pub fn part(config: &PostgresSourceConfig) -> String {
    format!("slot {}", config.slot)
}

/// Reads the slot until `shutdown`, reporting what it finds.
pub async fn run(config: PostgresSourceConfig, target: Target, report: SourceReport, shutdown: CancellationToken) {
    let part = part(&config);
    let every = Duration::from_millis(config.slot_check_interval_ms);
    let mut judge = Judge::new(
        config.max_retained_wal_bytes,
        Duration::from_millis(config.slot_stall_after_ms),
    );
    let mut client: Option<tokio_postgres::Client> = None;
    loop {
        if client.as_ref().is_none_or(|c| c.is_closed()) {
            client = target.connect().await.ok();
        }
        match &client {
            None => report.problem(
                &format!("{part} check"),
                Some("cannot connect to read the slot's state; retrying".into()),
            ),
            Some(c) => match read(c, &config.slot).await {
                Ok(Some(r)) => {
                    report.problem(&format!("{part} check"), None);
                    let v = judge.judge(r, Instant::now());
                    report.problem(&part, v.degraded.clone());
                    report.stall(&part, v.stalled.clone());
                    report.lag(
                        &part,
                        Lag {
                            bytes: Some(v.lag_bytes),
                            seconds: Some(v.lag_seconds),
                        },
                    );
                    report.merge_detail(
                        &part,
                        json!({
                            "active": r.active,
                            "server_lsn": r.server.to_string(),
                            "confirmed_flush_lsn": r.confirmed.map(|l| l.to_string()),
                            "restart_lsn": r.restart.map(|l| l.to_string()),
                            "retained_wal_bytes": v.retained_bytes,
                            "lag_bytes": v.lag_bytes,
                            "lag_seconds": (v.lag_seconds * 10.0).round() / 10.0,
                        }),
                    );
                }
                // The source creates the slot; until then there is nothing to read.
                Ok(None) => report.problem(&format!("{part} check"), None),
                Err(e) => {
                    report.problem(
                        &format!("{part} check"),
                        Some(format!("cannot read the slot's state: {e}")),
                    );
                    client = None;
                }
            },
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

async fn read(client: &tokio_postgres::Client, slot: &str) -> Result<Option<SlotReading>, String> {
    let row = client
        .query_opt(
            "SELECT pg_current_wal_lsn()::text, confirmed_flush_lsn::text, restart_lsn::text, active
             FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .map_err(|e| {
            e.as_db_error()
                .map(|d| d.message().to_owned())
                .unwrap_or_else(|| e.to_string())
        })?;
    Ok(row.map(|row| {
        let lsn = |i: usize| row.get::<_, Option<String>>(i).as_deref().and_then(Lsn::parse);
        SlotReading {
            server: lsn(0).unwrap_or_default(),
            confirmed: lsn(1),
            restart: lsn(2),
            active: row.get(3),
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(server: u64, confirmed: u64, restart: u64) -> SlotReading {
        SlotReading {
            server: Lsn(server),
            confirmed: Some(Lsn(confirmed)),
            restart: Some(Lsn(restart)),
            active: true,
        }
    }

    #[test]
    fn retained_wal_past_the_limit_is_degraded() {
        let mut j = Judge::new(1000, Duration::from_secs(60));
        let t = Instant::now();
        let v = j.judge(reading(5000, 5000, 4500), t);
        assert_eq!((v.retained_bytes, v.lag_bytes, v.degraded), (500, 0, None));
        let v = j.judge(reading(9000, 9000, 4500), t + Duration::from_secs(1));
        assert_eq!(v.retained_bytes, 4500);
        assert!(v.degraded.unwrap().contains("max_retained_wal_bytes = 1000"));
        assert_eq!(v.stalled, None, "a slot that keeps up is not stalled");
    }

    #[test]
    fn lag_seconds_date_the_oldest_unconfirmed_position() {
        let mut j = Judge::new(u64::MAX, Duration::from_secs(60));
        let t = Instant::now();
        j.judge(reading(100, 100, 100), t);
        j.judge(reading(200, 100, 100), t + Duration::from_secs(1));
        j.judge(reading(300, 150, 100), t + Duration::from_secs(2));
        // 200 was first seen at t+1 and is not confirmed yet: 4 s of lag at t+5.
        let v = j.judge(reading(400, 150, 100), t + Duration::from_secs(5));
        assert_eq!((v.lag_bytes, v.lag_seconds), (250, 4.0));
        // Everything up to 300 confirmed: the oldest waiting is 400, seen at t+5.
        let v = j.judge(reading(400, 300, 100), t + Duration::from_secs(6));
        assert_eq!((v.lag_bytes, v.lag_seconds), (100, 1.0));
        let v = j.judge(reading(400, 400, 100), t + Duration::from_secs(7));
        assert_eq!((v.lag_bytes, v.lag_seconds), (0, 0.0));
    }

    #[test]
    fn a_confirmed_position_that_stops_moving_behind_the_server_is_a_stall() {
        let mut j = Judge::new(u64::MAX, Duration::from_secs(10));
        let t = Instant::now();
        assert_eq!(j.judge(reading(100, 100, 100), t).stalled, None);
        // Idle: nothing past the slot, however long.
        assert_eq!(
            j.judge(reading(100, 100, 100), t + Duration::from_secs(60)).stalled,
            None
        );
        // The server writes, the slot does not move: stalled once 10 s have passed since the WAL came.
        assert_eq!(
            j.judge(reading(500, 100, 100), t + Duration::from_secs(65)).stalled,
            None
        );
        assert_eq!(
            j.judge(reading(700, 100, 100), t + Duration::from_secs(71)).stalled,
            None
        );
        let stalled = j.judge(reading(900, 100, 100), t + Duration::from_secs(76)).stalled;
        assert!(stalled.unwrap().contains("has not moved for 11s"));
        // It moves again: no longer stalled, though WAL still waits.
        assert_eq!(
            j.judge(reading(900, 600, 100), t + Duration::from_secs(77)).stalled,
            None
        );
    }

    #[test]
    fn samples_stay_bounded() {
        let mut j = Judge::new(u64::MAX, Duration::from_secs(10));
        let t = Instant::now();
        for i in 0..(MAX_SAMPLES as u64 * 3) {
            j.judge(reading(1000 + i, 1000, 1000), t + Duration::from_millis(i));
        }
        assert!(j.samples.len() <= MAX_SAMPLES);
        assert_eq!(
            j.samples.front().map(|s| s.0),
            Some(Lsn(1001)),
            "the oldest waiting position is kept"
        );
    }
}
