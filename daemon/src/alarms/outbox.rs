//! Delivery of the notification outbox: every pending row is offered to its channel, marked
//! sent only once the channel accepted it, and retried with capped exponential backoff otherwise.
//! Rows survive restarts (they are in the buffer); a row is delivered at least once, and exactly
//! once unless the process dies between the channel's acceptance and the commit that marks it.
//!
//! Flood control: when more than `flood_threshold` rows wait for one subscriber at once, they are
//! folded into one summary row (in the same transaction that marks them as folded), which is then
//! delivered like any other.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use parking_lot::RwLock;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::config::AlarmsConfig;
use super::text;
use crate::config::users::UserConfig;
use crate::model::{Lang, Severity};
use crate::service::metrics::{Labels, MetricSet};
use crate::store::{DueNotifications, IngestHandle, OutboxRow, Reader, StoreError, SummaryRow};

/// Why a channel did not accept a message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DeliveryError(pub String);

/// The future a channel returns.
pub type DeliveryFuture<'a> = Pin<Box<dyn Future<Output = Result<(), DeliveryError>> + Send + 'a>>;

/// One notification as the outbox offers it to a channel.
#[derive(Clone, Copy, Debug)]
pub struct Notice<'a> {
    /// The outbox row.
    pub id: i64,
    /// Address on the channel.
    pub address: &'a str,
    /// The text.
    pub text: &'a str,
    /// The alarm it is about (`None` for flood-control summaries).
    pub alarm_id: Option<i64>,
    /// `raised`, `cleared`, `normal`, `reminder`, `summary`, ...
    pub kind: &'a str,
}

/// A way to reach people: Telegram, the service log, ...
pub trait Channel: Send + Sync + fmt::Debug {
    /// Sends `text` to `address`. `Ok` means the channel accepted the message.
    fn deliver<'a>(&'a self, address: &'a str, text: &'a str) -> DeliveryFuture<'a>;

    /// Sends a notification. The default sends its text with [`Channel::deliver`]; a channel
    /// that can do more with it (Telegram: Ack and Shelve buttons, edited later) overrides it.
    fn deliver_notice<'a>(&'a self, notice: Notice<'a>) -> DeliveryFuture<'a> {
        self.deliver(notice.address, notice.text)
    }
}

/// Writes notifications to the service log (journald under systemd).
#[derive(Debug, Default)]
pub struct LogChannel;

impl Channel for LogChannel {
    fn deliver<'a>(&'a self, _address: &'a str, text: &'a str) -> DeliveryFuture<'a> {
        Box::pin(async move {
            warn!(component = "alarms", channel = "log", "{text}");
            Ok(())
        })
    }
}

/// The channels that can deliver now, by name. Channels register when they start (Telegram
/// after its first successful contact); rows for a channel not registered wait.
#[derive(Clone, Debug, Default)]
pub struct Channels {
    inner: Arc<RwLock<HashMap<String, Arc<dyn Channel>>>>,
}

impl Channels {
    /// Registers (or replaces) a channel.
    pub fn register(&self, name: &str, channel: Arc<dyn Channel>) {
        let mut map = self.inner.write();
        map.insert(name.to_owned(), channel);
    }

    /// Removes a channel.
    pub fn unregister(&self, name: &str) {
        let mut map = self.inner.write();
        map.remove(name);
    }

    /// Removes channel `name` if it is still `channel` (one registered since, by a restarted
    /// component, stays).
    pub fn unregister_if(&self, name: &str, channel: &Arc<dyn Channel>) {
        let mut map = self.inner.write();
        if map.get(name).is_some_and(|c| Arc::ptr_eq(c, channel)) {
            map.remove(name);
        }
    }

    fn get(&self, name: &str) -> Option<Arc<dyn Channel>> {
        let map = self.inner.read();
        map.get(name).cloned()
    }

    fn names(&self) -> Vec<String> {
        let map = self.inner.read();
        map.keys().cloned().collect()
    }
}

/// A notification target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscriber {
    /// `<channel>:<address>`; part of the outbox dedup key.
    pub key: String,
    /// Channel name.
    pub channel: String,
    /// Address on the channel.
    pub address: String,
    /// Language.
    pub lang: Lang,
    /// Least severity.
    pub min_severity: Severity,
}

/// Everyone who receives alarm notifications: users with `notify` and `[[alarms.notify]]`.
pub fn subscribers(cfg: &AlarmsConfig, users: &[UserConfig]) -> Vec<Subscriber> {
    let mut out: Vec<Subscriber> = Vec::new();
    for u in users {
        if let (true, Some(id)) = (u.notify, u.telegram_id) {
            out.push(Subscriber {
                key: format!("telegram:{id}"),
                channel: "telegram".into(),
                address: id.to_string(),
                lang: u.lang,
                min_severity: u.min_severity,
            });
        }
    }
    for n in &cfg.notify {
        let key = format!("{}:{}", n.channel, n.to.trim());
        if out.iter().any(|s| s.key == key) {
            continue;
        }
        out.push(Subscriber {
            key,
            channel: n.channel.clone(),
            address: n.to.trim().to_owned(),
            lang: n.lang,
            min_severity: n.min_severity,
        });
    }
    out
}

/// Metrics of the alarm engine and the outbox.
#[derive(Debug, Default)]
pub struct AlarmMetrics {
    /// Readings evaluated.
    pub evaluated: Counter,
    /// Alarm events recorded, by `event`.
    pub events: Family<Labels, Counter>,
    /// Alarms currently active.
    pub active: Gauge,
    /// Alarms awaiting acknowledgement.
    pub unacked: Gauge,
    /// Outbox rows not yet accepted by their channel.
    pub outbox_pending: Gauge,
    /// Notifications accepted by a channel, by `channel`.
    pub delivered: Family<Labels, Counter>,
    /// Delivery attempts a channel refused, by `channel`.
    pub delivery_failures: Family<Labels, Counter>,
    /// Summary messages made by flood control.
    pub summaries: Counter,
    /// Operator actions refused (role, unknown alarm, wrong state).
    pub refused: Counter,
}

impl MetricSet for AlarmMetrics {
    /// Registers the metrics under `markoff_alarms_*`.
    fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "alarms_readings_evaluated",
            "Readings evaluated by the alarm engine",
            m.evaluated.clone(),
        );
        registry.register(
            "alarms_events",
            "Alarm lifecycle events recorded, by event",
            m.events.clone(),
        );
        registry.register("alarms_active", "Alarms active now", m.active.clone());
        registry.register(
            "alarms_unacked",
            "Alarms awaiting acknowledgement",
            m.unacked.clone(),
        );
        registry.register(
            "alarms_outbox_pending",
            "Notifications not yet accepted by their channel",
            m.outbox_pending.clone(),
        );
        registry.register(
            "alarms_notifications_delivered",
            "Notifications accepted by a channel, by channel",
            m.delivered.clone(),
        );
        registry.register(
            "alarms_delivery_failures",
            "Notification attempts a channel refused, by channel",
            m.delivery_failures.clone(),
        );
        registry.register(
            "alarms_flood_summaries",
            "Summary messages sent instead of a burst of notifications",
            m.summaries.clone(),
        );
        registry.register(
            "alarms_actions_refused",
            "Operator actions refused (role, unknown alarm, wrong state)",
            m.refused.clone(),
        );
        m
    }
}

/// Delivered notifications are kept this long (for `markoff alarms` history and audits).
const KEEP_SENT_MS: i64 = 30 * 86_400_000;
/// How often old delivered rows are removed.
const CLEANUP_EVERY: Duration = Duration::from_secs(3600);

/// A pending outbox row.
type Pending = OutboxRow;

/// Settings of the dispatcher.
#[derive(Clone, Debug)]
pub struct DispatchConfig {
    /// More than this many rows for one subscriber at once become one summary.
    pub flood_threshold: usize,
    /// First retry delay.
    pub retry_min: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// Language per subscriber key (for summaries).
    pub langs: HashMap<String, Lang>,
}

/// Delivers the outbox until `token` is cancelled. `wake` is notified when rows are added.
///
/// # Errors
/// The buffer stopped.
pub async fn run_dispatcher(
    cfg: DispatchConfig,
    ingest: IngestHandle,
    reader: Reader,
    channels: Channels,
    metrics: Arc<super::outbox::AlarmMetrics>,
    wake: Arc<Notify>,
    token: CancellationToken,
) -> Result<(), StoreError> {
    let mut last_cleanup: Option<tokio::time::Instant> = None;
    loop {
        let now = crate::model::Timestamp::now().as_millis();
        if last_cleanup.is_none_or(|t| t.elapsed() >= CLEANUP_EVERY) {
            last_cleanup = Some(tokio::time::Instant::now());
            let before = now - KEEP_SENT_MS;
            let removed = ingest.forget_delivered(before).await?;
            if removed > 0 {
                debug!(
                    component = "alarms",
                    removed, "Old delivered notifications removed."
                );
            }
        }
        let names = channels.names();
        let DueNotifications {
            due,
            pending,
            next_due,
        } = reader.due_notifications(names, now).await?;
        metrics.outbox_pending.set(pending);
        let mut progressed = false;
        if !due.is_empty() {
            let mut by_sub: BTreeMap<String, Vec<Pending>> = BTreeMap::new();
            for row in due {
                by_sub.entry(row.subscriber.clone()).or_default().push(row);
            }
            for (sub, rows) in by_sub {
                if token.is_cancelled() {
                    return Ok(());
                }
                let foldable: Vec<&Pending> = rows.iter().filter(|r| r.kind != "summary").collect();
                if foldable.len() > cfg.flood_threshold {
                    let lang = cfg.langs.get(&sub).copied().unwrap_or_default();
                    fold(&ingest, &metrics, &sub, &foldable, lang, now).await?;
                    progressed = true;
                    continue;
                }
                for row in rows {
                    let Some(channel) = channels.get(&row.channel) else {
                        continue;
                    };
                    let result = tokio::select! {
                        () = token.cancelled() => return Ok(()),
                        r = channel.deliver_notice(Notice {
                            id: row.id,
                            address: &row.address,
                            text: &row.text,
                            alarm_id: row.alarm_id,
                            kind: &row.kind,
                        }) => r,
                    };
                    let refused = result.is_err();
                    record(&ingest, &metrics, &cfg, &row, result, now).await?;
                    progressed = true;
                    if refused {
                        // The rest of this subscriber's rows wait behind the refused one.
                        break;
                    }
                }
            }
        }
        if progressed {
            continue;
        }
        let wait = next_due.map_or(Duration::from_secs(5), |t| {
            Duration::from_millis(u64::try_from(t - now).unwrap_or(0).clamp(10, 5000))
        });
        tokio::select! {
            () = token.cancelled() => return Ok(()),
            () = wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

async fn record(
    ingest: &IngestHandle,
    metrics: &AlarmMetrics,
    cfg: &DispatchConfig,
    row: &Pending,
    result: Result<(), DeliveryError>,
    now: i64,
) -> Result<(), StoreError> {
    let labels = vec![("channel".to_owned(), row.channel.clone())];
    let id = row.id;
    match result {
        Ok(()) => {
            metrics.delivered.get_or_create(&labels).inc();
            debug!(component = "alarms", id, channel = %row.channel, "Notification delivered.");
            ingest.mark_delivered(id, now).await?;
        }
        Err(e) => {
            metrics.delivery_failures.get_or_create(&labels).inc();
            let delay = retry_delay(cfg, row.attempts + 1);
            if row.attempts == 0 {
                warn!(component = "alarms", id, channel = %row.channel, error = %e, ?delay, "A channel did not accept a notification; it is kept and retried.");
            } else {
                debug!(component = "alarms", id, channel = %row.channel, error = %e, attempts = row.attempts + 1, ?delay, "Notification still not accepted.");
            }
            let next = now + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
            ingest.mark_refused(id, next, e.0).await?;
        }
    }
    Ok(())
}

/// Exponential from `retry_min`, capped at `retry_max`, with up to 20 % jitter.
fn retry_delay(cfg: &DispatchConfig, attempt: i64) -> Duration {
    let exp = u32::try_from(attempt.clamp(1, 20) - 1).unwrap_or(0);
    let base = cfg
        .retry_min
        .saturating_mul(1u32 << exp.min(16))
        .min(cfg.retry_max);
    let jitter = rand::random::<f64>() * 0.2;
    base.mul_f64(1.0 - jitter)
}

async fn fold(
    ingest: &IngestHandle,
    metrics: &AlarmMetrics,
    subscriber: &str,
    rows: &[&Pending],
    lang: Lang,
    now: i64,
) -> Result<(), StoreError> {
    let lines: Vec<String> = rows
        .iter()
        .map(|r| r.text.lines().next().unwrap_or("").to_owned())
        .collect();
    let text = text::summary(lang, &lines, rows.len());
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let (first, last) = (ids[0], ids[ids.len() - 1]);
    let head = rows[0];
    let summary = SummaryRow {
        subscriber: subscriber.to_owned(),
        channel: head.channel.clone(),
        address: head.address.clone(),
        text,
        dedup: format!("summary:{first}:{last}:{subscriber}"),
    };
    info!(
        component = "alarms",
        subscriber,
        folded = ids.len(),
        "Flood control: a burst of notifications goes out as one summary."
    );
    metrics.summaries.inc();
    ingest
        .fold_notifications(summary, ids, now)
        .await
        .inspect_err(|e| error!(component = "alarms", error = %e, "Cannot fold notifications."))
}
