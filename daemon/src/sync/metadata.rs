//! The `metadata` stream: the site (from `[site]`) and the sensors (from the buffer), upserted
//! centrally as one snapshot whenever its content changes.
//!
//! Owns: building the snapshot, its content hash, and the version kept with it. The version
//! counts uploads of changed content: the centre stores it as the stream's cursor and the gateway
//! in `sync_cursor` (with the hash in `component_state`, same transaction). A crash between the
//! central upsert and the local record only causes the same snapshot to be sent again, with a
//! higher version.

use std::sync::Arc;
use std::time::Duration;

use markoff_proto::{FloorRow, RoomRow, SensorMetaRow, SiteMetadata, Stream, TenantRow};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::connect::SyncFailure;

use super::retry::Retry;
use super::status::StreamState;
use super::uploader::StreamCtx;
use crate::config::SiteConfig;
use crate::model::Timestamp;
use crate::service::supervisor::TaskError;
use crate::store::{StoreError, SyncReader};

/// `component_state` key of the last uploaded snapshot's hash and version.
const STATE_KEY: &str = "sync.metadata";
/// How often a connected gateway tells the centre it is alive when it has nothing to send.
const CONTACT_EVERY: Duration = Duration::from_secs(60);

/// Where the current site configuration comes from: `[gateway] name` and `[site]` of the
/// configuration in force (it follows reloads).
pub type SiteSource = Arc<dyn Fn() -> (Option<String>, SiteConfig) + Send + Sync>;

/// The last snapshot the centre committed, as recorded locally.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Recorded {
    hash: String,
    version: i64,
}

/// Runs the metadata uploader until `token` is cancelled or the buffer closes.
pub(crate) async fn run(
    ctx: Arc<StreamCtx>,
    site: SiteSource,
    token: CancellationToken,
) -> Result<(), TaskError> {
    let mut retry = Retry::new(Stream::Metadata, ctx.max_backoff);
    loop {
        let outcome = tokio::select! {
            () = token.cancelled() => break,
            r = session(&ctx, &site, &mut retry) => r,
        };
        let failure = match outcome {
            Ok(()) | Err(SyncFailure::Local(StoreError::Closed)) => break,
            Err(f) => f,
        };
        let delay = retry.failed(&failure);
        let next = Timestamp::now().as_millis() + i64::try_from(delay.as_millis()).unwrap_or(0);
        ctx.status.failed(Stream::Metadata, &failure.chain(), next);
        if !super::uploader::back_off(&ctx, None, &failure, delay, &mut retry, &token).await {
            break;
        }
    }
    ctx.status.set_state(Stream::Metadata, StreamState::Stopped);
    Ok(())
}

/// What the last check saw, to rebuild the snapshot only when something changed.
#[derive(Debug, PartialEq)]
struct Seen {
    sensors: (i64, i64, i64),
    gateway_name: Option<String>,
    site: SiteConfig,
}

async fn session(ctx: &StreamCtx, site: &SiteSource, retry: &mut Retry) -> Result<(), SyncFailure> {
    ctx.status
        .set_state(Stream::Metadata, StreamState::Connecting);
    let mut conn = ctx.target.connect().await?;
    let gw = ctx.gateway_id.clone();
    touch(ctx, &mut conn).await?;
    let mut central = ctx
        .target
        .call(
            "reading the central cursor",
            markoff_proto::central_cursor(&mut conn, &gw, Stream::Metadata),
        )
        .await?;
    ctx.status
        .set_state(Stream::Metadata, StreamState::Connected);
    let mut seen: Option<Seen> = None;
    let mut last_contact = Instant::now();
    let mut pending_since: Option<Instant> = None;
    loop {
        let (gateway_name, site_cfg) = site();
        let fingerprint = blocking(ctx, |db| db.sensors_fingerprint()).await?;
        let now_seen = Seen {
            sensors: fingerprint,
            gateway_name,
            site: site_cfg,
        };
        if seen.as_ref() != Some(&now_seen) {
            let since = *pending_since.get_or_insert_with(Instant::now);
            ctx.status
                .set_lag(Stream::Metadata, 1, since.elapsed().as_secs_f64());
            central = upload_if_changed(ctx, &mut conn, &now_seen, central).await?;
            pending_since = None;
            ctx.status.set_lag(Stream::Metadata, 0, 0.0);
            seen = Some(now_seen);
            retry.recovered();
        }
        if last_contact.elapsed() >= CONTACT_EVERY {
            touch(ctx, &mut conn).await?;
            last_contact = Instant::now();
        }
        tokio::time::sleep(ctx.interval).await;
    }
}

async fn touch(ctx: &StreamCtx, conn: &mut PgConnection) -> Result<(), SyncFailure> {
    ctx.target
        .call(
            "recording contact",
            markoff_proto::touch_gateway(conn, &ctx.gateway_id),
        )
        .await
}

/// Builds the snapshot; uploads it when its hash differs from the last one the centre committed
/// (or the centre's version differs from ours). Returns the centre's version afterwards.
async fn upload_if_changed(
    ctx: &StreamCtx,
    conn: &mut PgConnection,
    seen: &Seen,
    central: i64,
) -> Result<i64, SyncFailure> {
    let (sensors, recorded) = blocking(ctx, |db| Ok((db.sensors()?, db.state(STATE_KEY)?))).await?;
    let recorded: Option<Recorded> = recorded.and_then(|v| serde_json::from_str(&v).ok());
    let meta = snapshot(seen.gateway_name.as_deref(), &seen.site, sensors);
    let hash = format!("{:016x}", content_hash(&meta));
    let local = recorded.as_ref().map_or(0, |r| r.version);
    ctx.status
        .set_cursors(Stream::Metadata, local, Some(central));
    if recorded.as_ref().is_some_and(|r| r.hash == hash) && central == local {
        return Ok(central);
    }
    let version = local.max(central) + 1;
    let started = Instant::now();
    ctx.target
        .call(
            "upserting the site metadata",
            markoff_proto::upsert_metadata(conn, &ctx.gateway_id, &meta, version),
        )
        .await?;
    let rows = meta.sensors.len() + meta.floors.len() + meta.rooms.len() + meta.tenants.len() + 1;
    ctx.status.batch_committed(
        Stream::Metadata,
        u64::try_from(rows).unwrap_or(u64::MAX),
        started.elapsed().as_secs_f64(),
    );
    let value = serde_json::to_string(&Recorded { hash, version }).unwrap_or_default();
    ctx.ingest
        .record_synced_metadata(STATE_KEY, value, version)
        .await?;
    ctx.status
        .set_cursors(Stream::Metadata, version, Some(version));
    info!(
        stream = %Stream::Metadata,
        version,
        sensors = meta.sensors.len(),
        floors = meta.floors.len(),
        rooms = meta.rooms.len(),
        tenants = meta.tenants.len(),
        "Site metadata uploaded to the centre."
    );
    Ok(version)
}

async fn blocking<T: Send + 'static>(
    ctx: &StreamCtx,
    f: impl FnOnce(&SyncReader) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, SyncFailure> {
    let path = ctx.db_path.clone();
    tokio::task::spawn_blocking(move || {
        let db = SyncReader::open(&path)?;
        f(&db)
    })
    .await
    .map_err(|e| SyncFailure::Local(StoreError::Task(e.to_string())))?
    .map_err(SyncFailure::Local)
}

/// The snapshot the centre receives.
fn snapshot(
    gateway_name: Option<&str>,
    site: &SiteConfig,
    sensors: Vec<SensorMetaRow>,
) -> SiteMetadata {
    SiteMetadata {
        building_name: site
            .name
            .clone()
            .or_else(|| gateway_name.map(str::to_owned)),
        address: site.address.clone(),
        floors: site
            .floor
            .iter()
            .map(|f| FloorRow {
                id: f.id.clone(),
                name: f.name.clone().unwrap_or_else(|| f.id.clone()),
                level: f.level,
                width: f.size().map(|(w, _)| w),
                height: f.size().map(|(_, h)| h),
            })
            .collect(),
        rooms: site
            .room
            .iter()
            .map(|r| RoomRow {
                id: r.id.clone(),
                floor: r.floor.clone(),
                name: r.name.clone().unwrap_or_else(|| r.id.clone()),
                tenant: r.tenant.clone(),
                polygon: r.polygon.clone(),
            })
            .collect(),
        tenants: site
            .tenant
            .iter()
            .map(|t| TenantRow {
                id: t.id.clone(),
                name: t.name.clone().unwrap_or_else(|| t.id.clone()),
            })
            .collect(),
        sensors,
    }
}

/// A stable 64-bit hash (FNV-1a) of the snapshot's content. Stable across builds, unlike the
/// standard library's hasher, so an upgrade does not make every gateway upload again.
fn content_hash(m: &SiteMetadata) -> u64 {
    let mut h = Fnv::default();
    h.opt(m.building_name.as_deref());
    h.opt(m.address.as_deref());
    h.num(m.floors.len());
    for f in &m.floors {
        h.str(&f.id);
        h.str(&f.name);
        h.opt(f.level.map(|l| l.to_string()).as_deref());
        // Geometry only when present, so a site without it hashes as before this field existed
        // (no re-upload after an upgrade).
        if let (Some(w), Some(hh)) = (f.width, f.height) {
            h.str(&format!("size {w} {hh}"));
        }
    }
    h.num(m.rooms.len());
    for r in &m.rooms {
        h.str(&r.id);
        h.opt(r.floor.as_deref());
        h.str(&r.name);
        h.opt(r.tenant.as_deref());
        if let Some(p) = &r.polygon {
            h.str(&format!("polygon {p:?}"));
        }
    }
    h.num(m.tenants.len());
    for t in &m.tenants {
        h.str(&t.id);
        h.str(&t.name);
    }
    h.num(m.sensors.len());
    for s in &m.sensors {
        h.str(&s.sensor_id.to_string());
        h.str(&s.key);
        h.str(&s.name);
        h.str(&s.kind);
        h.str(&s.unit);
        h.opt(s.floor.as_deref());
        h.opt(s.room.as_deref());
        h.str(&s.source);
    }
    h.0
}

struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn bytes(&mut self, b: &[u8]) {
        for byte in b {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    /// A length-prefixed string, so that field boundaries count.
    fn str(&mut self, s: &str) {
        self.num(s.len());
        self.bytes(s.as_bytes());
    }
    fn opt(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.bytes(&[1]);
                self.str(s);
            }
            None => self.bytes(&[0]),
        }
    }
    fn num(&mut self, n: usize) {
        self.bytes(&(n as u64).to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FloorConfig, RoomConfig};

    fn site() -> SiteConfig {
        SiteConfig {
            name: None,
            address: Some("Lenina 17".into()),
            floor: vec![FloorConfig {
                id: "1".into(),
                name: None,
                level: Some(1),
                ..FloorConfig::default()
            }],
            room: vec![RoomConfig {
                id: "101".into(),
                floor: Some("1".into()),
                name: Some("Office".into()),
                tenant: None,
                ..RoomConfig::default()
            }],
            tenant: Vec::new(),
            ..SiteConfig::default()
        }
    }

    #[test]
    fn snapshot_defaults_names_and_the_hash_follows_content() {
        let m = snapshot(Some("Lenina 17"), &site(), Vec::new());
        assert_eq!(m.building_name.as_deref(), Some("Lenina 17"));
        assert_eq!(m.floors[0].name, "1");
        let h = content_hash(&m);
        assert_eq!(
            h,
            content_hash(&snapshot(Some("Lenina 17"), &site(), Vec::new()))
        );
        let mut changed = site();
        changed.room[0].name = Some("Office 2".into());
        assert_ne!(
            h,
            content_hash(&snapshot(Some("Lenina 17"), &changed, Vec::new()))
        );
        // Moving text between adjacent fields changes the hash too.
        let mut a = site();
        a.address = Some("ab".into());
        a.name = Some("c".into());
        let mut b = site();
        b.address = Some("a".into());
        b.name = Some("bc".into());
        assert_ne!(
            content_hash(&snapshot(None, &a, Vec::new())),
            content_hash(&snapshot(None, &b, Vec::new()))
        );
    }

    #[test]
    fn floor_sizes_and_room_polygons_are_sent_and_hashed() {
        let plain = site();
        let mut geo = site();
        geo.floor[0].width = Some(20.0);
        geo.floor[0].height = Some(10.0);
        geo.room[0].polygon = Some(vec![[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]]);
        let m = snapshot(None, &geo, Vec::new());
        assert_eq!(
            (m.floors[0].width, m.floors[0].height),
            (Some(20.0), Some(10.0))
        );
        assert_eq!(m.rooms[0].polygon.as_ref().map(Vec::len), Some(3));
        let h = content_hash(&m);
        assert_ne!(h, content_hash(&snapshot(None, &plain, Vec::new())));
        geo.room[0].polygon = Some(vec![[0.0, 0.0], [10.0, 0.0], [10.0, 9.0]]);
        assert_ne!(h, content_hash(&snapshot(None, &geo, Vec::new())));
    }
}
