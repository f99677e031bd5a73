//! The notification outbox in the buffer: rows waiting for delivery, marking them delivered or
//! due again, folding a burst into one summary row, forgetting delivered rows.
//!
//! Owns: the `outbox` table's reads and updates. Does not own: when to retry or fold
//! (`crate::alarms::outbox`); rows are created with their events (`super::alarms`).

use std::collections::HashSet;

use rusqlite::params;

use super::reader::Lane;
use super::{IngestHandle, Reader, StoreError};

/// A notification waiting for delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRow {
    /// Row id.
    pub id: i64,
    /// Subscriber key.
    pub subscriber: String,
    /// Channel name.
    pub channel: String,
    /// Address on that channel.
    pub address: String,
    /// `raised`, `reminder`, `summary`, ...
    pub kind: String,
    /// The message.
    pub text: String,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// The alarm it is about (none for a summary).
    pub alarm_id: Option<i64>,
}

/// The summary row a burst of notifications is folded into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummaryRow {
    /// Subscriber key.
    pub subscriber: String,
    /// Channel name.
    pub channel: String,
    /// Address on that channel.
    pub address: String,
    /// The message.
    pub text: String,
    /// What makes the row unique (the same burst folded twice makes one row).
    pub dedup: String,
}

/// What waits in the outbox.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DueNotifications {
    /// Rows due on the channels asked for, oldest first, at most 500.
    pub due: Vec<OutboxRow>,
    /// Rows not delivered yet, on any channel.
    pub pending: i64,
    /// When the next row that is not due yet becomes due (ms).
    pub next_due: Option<i64>,
}

impl Reader {
    /// The rows due at `now` (ms) on `channels`, the number pending in all, and when the next
    /// row becomes due. A subscriber's rows go out in order: while its oldest pending row waits
    /// for a retry, the rows after it wait too.
    ///
    /// # Errors
    /// The query failed.
    pub async fn due_notifications(
        &self,
        channels: Vec<String>,
        now: i64,
    ) -> Result<DueNotifications, StoreError> {
        self.run(Lane::Quick, move |c| {
            let c = &c.conn;
            let pending: i64 = c.query_row(
                "SELECT count(*) FROM outbox WHERE sent_ms IS NULL",
                [],
                |r| r.get(0),
            )?;
            let mut out = DueNotifications {
                pending,
                ..DueNotifications::default()
            };
            if pending == 0 || channels.is_empty() {
                return Ok::<_, rusqlite::Error>(out);
            }
            // Only registered channels: rows for a channel that is not running never crowd out
            // the others.
            let placeholders = vec!["?"; channels.len()].join(", ");
            let mut stmt = c.prepare_cached(&format!(
                "SELECT id, subscriber, channel, address, kind, text, attempts, next_attempt_ms, alarm_id FROM outbox \
                 WHERE sent_ms IS NULL AND channel IN ({placeholders}) ORDER BY id LIMIT 2000"
            ))?;
            let mut rows = stmt.query(rusqlite::params_from_iter(channels.iter()))?;
            let mut waiting: HashSet<String> = HashSet::new();
            while let Some(r) = rows.next()? {
                let subscriber: String = r.get(1)?;
                if waiting.contains(&subscriber) {
                    continue;
                }
                let at: i64 = r.get(7)?;
                if at > now {
                    out.next_due = Some(out.next_due.map_or(at, |n| n.min(at)));
                    waiting.insert(subscriber);
                    continue;
                }
                if out.due.len() < 500 {
                    out.due.push(OutboxRow {
                        id: r.get(0)?,
                        subscriber,
                        channel: r.get(2)?,
                        address: r.get(3)?,
                        kind: r.get(4)?,
                        text: r.get(5)?,
                        attempts: r.get(6)?,
                        alarm_id: r.get(8)?,
                    });
                }
            }
            Ok(out)
        })
        .await
    }
}

impl IngestHandle {
    /// Deletes rows delivered before `before` (ms); returns how many.
    ///
    /// # Errors
    /// The writer failed or has stopped.
    pub async fn forget_delivered(&self, before: i64) -> Result<usize, StoreError> {
        self.transact(move |tx| {
            tx.execute(
                "DELETE FROM outbox WHERE sent_ms IS NOT NULL AND sent_ms < ?1",
                [before],
            )
        })
        .await
    }

    /// Marks row `id` delivered at `now` (ms).
    ///
    /// # Errors
    /// The writer failed or has stopped.
    pub async fn mark_delivered(&self, id: i64, now: i64) -> Result<(), StoreError> {
        self.transact(move |tx| {
            tx.execute(
                "UPDATE outbox SET sent_ms = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1",
                params![id, now],
            )
        })
        .await
        .map(|_| ())
    }

    /// Records a refused delivery of row `id`: due again at `next` (ms), with the error.
    ///
    /// # Errors
    /// The writer failed or has stopped.
    pub async fn mark_refused(&self, id: i64, next: i64, error: String) -> Result<(), StoreError> {
        self.transact(move |tx| {
            tx.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_ms = ?2, last_error = ?3 WHERE id = ?1",
                params![id, next, error],
            )
        })
        .await
        .map(|_| ())
    }

    /// Marks the rows `ids` of one subscriber as folded into `summary` (created unless it
    /// exists), in one transaction.
    ///
    /// # Errors
    /// The writer failed or has stopped.
    pub async fn fold_notifications(
        &self,
        summary: SummaryRow,
        ids: Vec<i64>,
        now: i64,
    ) -> Result<(), StoreError> {
        self.transact(move |tx| {
            tx.execute(
                "INSERT INTO outbox (dedup_key, subscriber, channel, address, kind, severity, text, \
                 created_ms, next_attempt_ms) VALUES (?1, ?2, ?3, ?4, 'summary', 'high', ?5, ?6, ?6) \
                 ON CONFLICT (dedup_key) DO NOTHING",
                params![
                    summary.dedup,
                    summary.subscriber,
                    summary.channel,
                    summary.address,
                    summary.text,
                    now
                ],
            )?;
            let id: i64 =
                tx.query_row("SELECT id FROM outbox WHERE dedup_key = ?1", [&summary.dedup], |r| {
                    r.get(0)
                })?;
            let mut stmt = tx.prepare_cached(
                "UPDATE outbox SET sent_ms = ?2, summary_id = ?3 WHERE id = ?1 AND sent_ms IS NULL",
            )?;
            for folded in &ids {
                stmt.execute(params![folded, now, id])?;
            }
            Ok(())
        })
        .await
    }
}
