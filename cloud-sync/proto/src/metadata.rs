//! Site metadata: the building, its floors, rooms and tenants, and the gateway's sensors, as the
//! gateway's configuration describes them.
//!
//! Owns: the metadata types and [`upsert_metadata`]. Does not own: where the metadata comes from
//! (the daemon's config) or when it is sent (the daemon's uploader).
//!
//! A snapshot replaces the building's floors, rooms and tenants (entries missing from it are
//! deleted) and upserts the gateway's sensors (never deleted: old readings keep their meaning).
//! Rows whose values did not change are not written, so a repeated upsert changes nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, Row};

use crate::Stream;
use crate::error::SyncError;
use crate::identity::{self, GatewayIdentity};
use crate::upload::{db_err, lock_cursor};

/// A floor of the building.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FloorRow {
    /// Id, unique within the building.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Level (0 ground, negative below), when known.
    pub level: Option<i32>,
    /// Width of the floor's plan in plan units (with `height`: the plan is the rectangle
    /// `[0, width] x [0, height]`, y downwards), when the site gives its geometry.
    #[serde(default)]
    pub width: Option<f64>,
    /// Height of the floor's plan in plan units.
    #[serde(default)]
    pub height: Option<f64>,
}

/// A room or unit of the building.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RoomRow {
    /// Id, unique within the building.
    pub id: String,
    /// The floor id it is on, when known.
    pub floor: Option<String>,
    /// Display name.
    pub name: String,
    /// The tenant id occupying it, if any.
    pub tenant: Option<String>,
    /// Its outline on its floor's plan, `[x, y]` corners in the floor's units (not closed),
    /// when the site gives it.
    #[serde(default)]
    pub polygon: Option<Vec<[f64; 2]>>,
}

/// A tenant of the building.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TenantRow {
    /// Id, unique within the building.
    pub id: String,
    /// Display name.
    pub name: String,
}

/// A sensor of the gateway, keyed by its gateway-local id (the `sensor_id` of its readings).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SensorMetaRow {
    /// The gateway-local sensor id; must fit in an i32.
    pub sensor_id: i64,
    /// The sensor key (e.g. `boiler.supply_temp`).
    pub key: String,
    /// Display name.
    pub name: String,
    /// Kind (e.g. `temperature`).
    pub kind: String,
    /// Unit (e.g. `°C`), empty when none.
    pub unit: String,
    /// Floor id, when placed.
    pub floor: Option<String>,
    /// Room id, when placed.
    pub room: Option<String>,
    /// The source that reads it.
    pub source: String,
}

/// Everything a gateway tells the centre about its site.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SiteMetadata {
    /// The building's name; `None` keeps the name the centre has.
    pub building_name: Option<String>,
    /// The building's address; `None` keeps the address the centre has.
    pub address: Option<String>,
    /// Every floor; floors of the building missing here are deleted.
    pub floors: Vec<FloorRow>,
    /// Every room or unit; rooms missing here are deleted.
    pub rooms: Vec<RoomRow>,
    /// Every tenant; tenants missing here are deleted.
    pub tenants: Vec<TenantRow>,
    /// The gateway's sensors; sensors missing here are kept.
    pub sensors: Vec<SensorMetaRow>,
}

/// Writes `meta` for `gateway_id`'s building in one transaction and stores `version` as the
/// metadata stream's cursor (read it back with [`crate::central_cursor`]). Entries with the same
/// id appear once (the last wins). Repeating a call changes nothing.
///
/// # Errors
/// [`SyncError::InvalidRow`] for a sensor id beyond an i32 (before anything is written);
/// [`SyncError::Database`] when a statement fails or the gateway is unknown to the connected role
/// (SQLSTATE 42501); the transaction is then rolled back.
pub async fn upsert_metadata<G: GatewayIdentity + ?Sized>(
    conn: &mut PgConnection,
    gateway: &G,
    meta: &SiteMetadata,
    version: i64,
) -> Result<(), SyncError> {
    let gateway_id = gateway.gateway_id();
    let sensors = sensor_columns(gateway_id, &meta.sensors)?;
    let gw = gateway_id;
    let mut tx = identity::begin(
        conn,
        gateway,
        Some("BEGIN ISOLATION LEVEL READ COMMITTED"),
        "starting the metadata transaction",
    )
    .await?;
    lock_cursor(&mut tx, gw, Stream::Metadata).await?;
    let building: Option<String> = crate::query("SELECT markoff.gateway_building($1)")
        .bind(gw)
        .fetch_one(&mut *tx)
        .await
        .and_then(|r| r.try_get(0))
        .map_err(db_err("finding the gateway's building", gw))?;
    let Some(building) = building else {
        return Err(SyncError::Database {
            op: "finding the gateway's building",
            gateway_id: gw.to_owned(),
            source: sqlx::Error::RowNotFound,
        });
    };

    crate::query(
        "UPDATE markoff.buildings \
         SET name = coalesce($2, name), address = coalesce($3, address), updated_at = now() \
         WHERE building_id = $1 \
           AND (name, address) IS DISTINCT FROM (coalesce($2, name), coalesce($3, address))",
    )
    .bind(&building)
    .bind(meta.building_name.as_deref())
    .bind(meta.address.as_deref())
    .execute(&mut *tx)
    .await
    .map_err(db_err("updating the building", gw))?;

    write_floors(&mut tx, gw, &building, &meta.floors).await?;
    write_tenants(&mut tx, gw, &building, &meta.tenants).await?;
    write_rooms(&mut tx, gw, &building, &meta.rooms).await?;
    write_sensors(&mut tx, gw, sensors).await?;

    crate::query(
        "UPDATE markoff.sync_cursors SET last_seq = $3, updated_at = now() \
         WHERE gateway_id = $1 AND stream = $2",
    )
    .bind(gw)
    .bind(Stream::Metadata.as_str())
    .bind(version)
    .execute(&mut *tx)
    .await
    .map_err(db_err("storing the metadata version", gw))?;
    tx.commit()
        .await
        .map_err(db_err("committing the metadata", gw))?;
    Ok(())
}

/// Keeps the last entry of each id, in id order.
fn dedup<T>(rows: &[T], id: impl Fn(&T) -> &str) -> Vec<&T> {
    let mut by_id: BTreeMap<&str, &T> = BTreeMap::new();
    for r in rows {
        by_id.insert(id(r), r);
    }
    by_id.into_values().collect()
}

async fn write_floors(
    conn: &mut PgConnection,
    gw: &str,
    building: &str,
    floors: &[FloorRow],
) -> Result<(), SyncError> {
    let rows = dedup(floors, |f| &f.id);
    let ids: Vec<&str> = rows.iter().map(|f| f.id.as_str()).collect();
    let names: Vec<&str> = rows.iter().map(|f| f.name.as_str()).collect();
    let levels: Vec<Option<i32>> = rows.iter().map(|f| f.level).collect();
    let widths: Vec<Option<f64>> = rows.iter().map(|f| f.width).collect();
    let heights: Vec<Option<f64>> = rows.iter().map(|f| f.height).collect();
    crate::query(
        "INSERT INTO markoff.floors AS t (building_id, floor_id, name, level, width, height) \
         SELECT $1, * FROM unnest($2::text[], $3::text[], $4::int4[], $5::float8[], $6::float8[]) \
         ON CONFLICT (building_id, floor_id) DO UPDATE \
         SET name = excluded.name, level = excluded.level, width = excluded.width, \
             height = excluded.height, updated_at = now() \
         WHERE (t.name, t.level, t.width, t.height) \
               IS DISTINCT FROM (excluded.name, excluded.level, excluded.width, excluded.height)",
    )
    .bind(building)
    .bind(&ids)
    .bind(&names)
    .bind(&levels)
    .bind(&widths)
    .bind(&heights)
    .execute(&mut *conn)
    .await
    .map_err(db_err("writing floors", gw))?;
    crate::query("DELETE FROM markoff.floors WHERE building_id = $1 AND floor_id <> ALL($2)")
        .bind(building)
        .bind(&ids)
        .execute(&mut *conn)
        .await
        .map_err(db_err("deleting old floors", gw))?;
    Ok(())
}

async fn write_tenants(
    conn: &mut PgConnection,
    gw: &str,
    building: &str,
    tenants: &[TenantRow],
) -> Result<(), SyncError> {
    let rows = dedup(tenants, |t| &t.id);
    let ids: Vec<&str> = rows.iter().map(|t| t.id.as_str()).collect();
    let names: Vec<&str> = rows.iter().map(|t| t.name.as_str()).collect();
    crate::query(
        "INSERT INTO markoff.tenants AS t (building_id, tenant_id, name) \
         SELECT $1, * FROM unnest($2::text[], $3::text[]) \
         ON CONFLICT (building_id, tenant_id) DO UPDATE \
         SET name = excluded.name, updated_at = now() \
         WHERE t.name IS DISTINCT FROM excluded.name",
    )
    .bind(building)
    .bind(&ids)
    .bind(&names)
    .execute(&mut *conn)
    .await
    .map_err(db_err("writing tenants", gw))?;
    crate::query("DELETE FROM markoff.tenants WHERE building_id = $1 AND tenant_id <> ALL($2)")
        .bind(building)
        .bind(&ids)
        .execute(&mut *conn)
        .await
        .map_err(db_err("deleting old tenants", gw))?;
    Ok(())
}

async fn write_rooms(
    conn: &mut PgConnection,
    gw: &str,
    building: &str,
    rooms: &[RoomRow],
) -> Result<(), SyncError> {
    let rows = dedup(rooms, |r| &r.id);
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let floors: Vec<Option<&str>> = rows.iter().map(|r| r.floor.as_deref()).collect();
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    let tenants: Vec<Option<&str>> = rows.iter().map(|r| r.tenant.as_deref()).collect();
    // JSON text, cast to jsonb by the server: `[[x, y], ...]`.
    let polygons: Vec<Option<String>> = rows
        .iter()
        .map(|r| {
            r.polygon
                .as_ref()
                .and_then(|p| serde_json::to_string(p).ok())
        })
        .collect();
    crate::query(
        "INSERT INTO markoff.rooms AS t (building_id, room_id, floor_id, name, tenant_id, polygon) \
         SELECT $1, r, f, n, tn, p::jsonb \
         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS u(r, f, n, tn, p) \
         ON CONFLICT (building_id, room_id) DO UPDATE \
         SET floor_id = excluded.floor_id, name = excluded.name, tenant_id = excluded.tenant_id, \
             polygon = excluded.polygon, updated_at = now() \
         WHERE (t.floor_id, t.name, t.tenant_id, t.polygon) \
               IS DISTINCT FROM (excluded.floor_id, excluded.name, excluded.tenant_id, excluded.polygon)",
    )
    .bind(building)
    .bind(&ids)
    .bind(&floors)
    .bind(&names)
    .bind(&tenants)
    .bind(&polygons)
    .execute(&mut *conn)
    .await
    .map_err(db_err("writing rooms", gw))?;
    crate::query("DELETE FROM markoff.rooms WHERE building_id = $1 AND room_id <> ALL($2)")
        .bind(building)
        .bind(&ids)
        .execute(&mut *conn)
        .await
        .map_err(db_err("deleting old rooms", gw))?;
    Ok(())
}

/// The sensors as columns for `unnest`, deduplicated by id.
struct SensorColumns<'a> {
    ids: Vec<i32>,
    keys: Vec<&'a str>,
    names: Vec<&'a str>,
    kinds: Vec<&'a str>,
    units: Vec<&'a str>,
    floors: Vec<Option<&'a str>>,
    rooms: Vec<Option<&'a str>>,
    sources: Vec<&'a str>,
}

fn sensor_columns<'a>(
    gateway_id: &str,
    sensors: &'a [SensorMetaRow],
) -> Result<SensorColumns<'a>, SyncError> {
    let mut by_id: BTreeMap<i32, &SensorMetaRow> = BTreeMap::new();
    for s in sensors {
        let id = i32::try_from(s.sensor_id).map_err(|_| SyncError::InvalidRow {
            stream: Stream::Metadata,
            gateway_id: gateway_id.to_owned(),
            seq: s.sensor_id,
            reason: format!("sensor id {} does not fit in an int4", s.sensor_id),
        })?;
        by_id.insert(id, s);
    }
    let rows: Vec<&SensorMetaRow> = by_id.values().copied().collect();
    Ok(SensorColumns {
        ids: by_id.keys().copied().collect(),
        keys: rows.iter().map(|s| s.key.as_str()).collect(),
        names: rows.iter().map(|s| s.name.as_str()).collect(),
        kinds: rows.iter().map(|s| s.kind.as_str()).collect(),
        units: rows.iter().map(|s| s.unit.as_str()).collect(),
        floors: rows.iter().map(|s| s.floor.as_deref()).collect(),
        rooms: rows.iter().map(|s| s.room.as_deref()).collect(),
        sources: rows.iter().map(|s| s.source.as_str()).collect(),
    })
}

async fn write_sensors(
    conn: &mut PgConnection,
    gw: &str,
    s: SensorColumns<'_>,
) -> Result<(), SyncError> {
    crate::query(
        "INSERT INTO markoff.sensors AS t \
             (gateway_id, sensor_id, key, name, kind, unit, floor, room, source) \
         SELECT $1, * FROM unnest($2::int4[], $3::text[], $4::text[], $5::text[], $6::text[], \
                                  $7::text[], $8::text[], $9::text[]) \
         ON CONFLICT (gateway_id, sensor_id) DO UPDATE \
         SET key = excluded.key, name = excluded.name, kind = excluded.kind, unit = excluded.unit, \
             floor = excluded.floor, room = excluded.room, source = excluded.source, \
             updated = now() \
         WHERE (t.key, t.name, t.kind, t.unit, t.floor, t.room, t.source) IS DISTINCT FROM \
               (excluded.key, excluded.name, excluded.kind, excluded.unit, excluded.floor, \
                excluded.room, excluded.source)",
    )
    .bind(gw)
    .bind(&s.ids)
    .bind(&s.keys)
    .bind(&s.names)
    .bind(&s.kinds)
    .bind(&s.units)
    .bind(&s.floors)
    .bind(&s.rooms)
    .bind(&s.sources)
    .execute(&mut *conn)
    .await
    .map_err(db_err("writing sensors", gw))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_keep_the_last() {
        let t = |id: &str, name: &str| TenantRow {
            id: id.into(),
            name: name.into(),
        };
        let rows = [t("b", "1"), t("a", "2"), t("b", "3")];
        let out = dedup(&rows, |r| &r.id);
        assert_eq!(out, vec![&rows[1], &rows[2]]);
    }

    #[test]
    fn sensor_ids_must_fit_int4() {
        let s = SensorMetaRow {
            sensor_id: 1 << 40,
            key: "k".into(),
            name: String::new(),
            kind: "other".into(),
            unit: String::new(),
            floor: None,
            room: None,
            source: String::new(),
        };
        assert!(sensor_columns("gw", &[s]).is_err());
    }
}
