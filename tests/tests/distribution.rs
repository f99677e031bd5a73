//! The central schema is ready to be distributed by `gateway_id` (Citus): checked against the
//! live catalog of a freshly migrated database and against the upload protocol's SQL.
//!
//! Every table of schema `markoff` is either distributed by `gateway_id` or a reference table
//! (small, replicated to every node), as docs/central-schema.md (section 9) lists; a new table
//! fails this test until it is put in one of the two lists. A distributed table has a
//! `gateway_id text NOT NULL` column that is in every primary key and unique index; a foreign key
//! between distributed tables joins on `gateway_id` (co-located); a reference table never points
//! at a distributed one. The upload protocol's statements join nothing, so each one stays on
//! the shard of its gateway.

#![allow(clippy::unwrap_used)]

use markoff_tests::pg::PgTestDb;
use markoff_tests::services::require_postgres;
use sqlx::Row as _;

/// Distributed by `gateway_id`: the tables a gateway writes at its data rate, and what hangs off
/// them.
const DISTRIBUTED: &[&str] = &[
    "readings",
    "readings_10m",
    "readings_1d",
    "readings_1d_pending",
    "sensor_latest",
    "alarm_events",
    "alarm_latest",
    "alarm_comments",
    "office_requests",
    "sync_cursors",
    "sensors",
    "clock_epochs",
    "gateway_clock",
];

/// Reference tables: one row per building, gateway, floor, room, tenant or office user.
const REFERENCE: &[&str] = &[
    "buildings",
    "gateways",
    "floors",
    "rooms",
    "tenants",
    "web_users",
    "web_sessions",
    "web_grants",
    "web_roles",
    "ingest_roles",
    "gateway_keys",
    // How far the daily rollup reaches: one row, written by maintain once a day.
    "rollup_state",
    // The migration runner's bookkeeping (a Citus coordinator keeps it local).
    "_sqlx_migrations",
    // Which gateway each backend's current transaction proved to be: per node and per backend
    // (keyed by pid), local to the node the transaction runs on, never distributed.
    "gateway_proofs",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_table_is_distributed_by_gateway_id_or_a_reference_table() {
    if !require_postgres() {
        return;
    }
    let pg = PgTestDb::create("distribution").await;
    let mut conn = pg.admin().await;

    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'markoff' AND c.relkind IN ('r', 'p') AND NOT c.relispartition \
         ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let unclassified: Vec<&String> = tables
        .iter()
        .filter(|t| !DISTRIBUTED.contains(&t.as_str()) && !REFERENCE.contains(&t.as_str()))
        .collect();
    assert!(
        unclassified.is_empty(),
        "tables neither distributed nor reference (add them to a list here and to \
         docs/central-schema.md, section 9): {unclassified:?}"
    );
    for t in DISTRIBUTED.iter().chain(REFERENCE) {
        assert!(tables.iter().any(|x| x == t), "table markoff.{t} is gone");
    }

    // The distribution column.
    for t in DISTRIBUTED {
        let col: Option<(String, bool)> = sqlx::query(
            "SELECT format_type(a.atttypid, a.atttypmod), a.attnotnull FROM pg_attribute a \
             WHERE a.attrelid = ('markoff.' || $1)::regclass AND a.attname = 'gateway_id' \
             AND NOT a.attisdropped",
        )
        .bind(t)
        .fetch_optional(&mut conn)
        .await
        .unwrap()
        .map(|r| (r.get(0), r.get(1)));
        assert_eq!(
            col,
            Some(("text".to_owned(), true)),
            "markoff.{t} needs gateway_id text NOT NULL"
        );
    }

    // Every primary key and unique index of a distributed table contains gateway_id.
    let uniques = sqlx::query(
        "SELECT t.relname::text, i.relname::text, x.indisprimary, \
                EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = t.oid \
                        AND a.attname = 'gateway_id' AND a.attnum = ANY (x.indkey)) \
         FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
         JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = 'markoff' AND x.indisunique AND NOT t.relispartition",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut keyed = Vec::new();
    for r in &uniques {
        let (table, index, primary, has): (String, String, bool, bool) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        if DISTRIBUTED.contains(&table.as_str()) {
            assert!(
                has,
                "unique index {index} of distributed table markoff.{table} lacks gateway_id"
            );
            if primary {
                keyed.push(table);
            }
        }
    }
    // Each distributed table has a key (readings: its unique index, as partitioned tables
    // cannot have a primary key without the partition column either).
    for t in DISTRIBUTED {
        assert!(
            uniques
                .iter()
                .any(|r| r.get::<String, _>(0) == *t && r.get::<bool, _>(3)),
            "distributed table markoff.{t} has no unique key with gateway_id"
        );
    }

    // Foreign keys: distributed -> reference, reference -> reference, or distributed ->
    // distributed on gateway_id on both sides; never reference -> distributed.
    let fks = sqlx::query(
        "SELECT c.conname::text, t.relname::text, f.relname::text, \
                ARRAY(SELECT a.attname::text FROM pg_attribute a \
                      WHERE a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)), \
                ARRAY(SELECT a.attname::text FROM pg_attribute a \
                      WHERE a.attrelid = c.confrelid AND a.attnum = ANY (c.confkey)) \
         FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid \
         JOIN pg_class f ON f.oid = c.confrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE c.contype = 'f' AND n.nspname = 'markoff' AND NOT t.relispartition",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(
        !fks.is_empty(),
        "the catalog query found no foreign key at all"
    );
    for r in &fks {
        let (name, from, to, cols, refcols): (String, String, String, Vec<String>, Vec<String>) =
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        let from_dist = DISTRIBUTED.contains(&from.as_str());
        let to_dist = DISTRIBUTED.contains(&to.as_str());
        assert!(
            from_dist || !to_dist,
            "reference table markoff.{from} points at distributed markoff.{to} ({name})"
        );
        if from_dist && to_dist {
            assert!(
                cols.iter().any(|c| c == "gateway_id") && refcols.iter().any(|c| c == "gateway_id"),
                "foreign key {name} between distributed tables {from} -> {to} is not on gateway_id"
            );
        }
    }

    // The write path: the upload protocol's statements join nothing (each touches one gateway's
    // rows of one table, by gateway_id), so none crosses shards.
    for file in ["upload.rs", "metadata.rs"] {
        let path = format!(
            "{}/../cloud-sync/proto/src/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        let src = std::fs::read_to_string(&path).unwrap();
        let upper = src.to_ascii_uppercase();
        assert!(
            !upper.contains(" JOIN ") && !upper.contains("\tJOIN "),
            "{path}: a JOIN on the write path"
        );
        assert!(
            src.contains("gateway_id"),
            "{path}: no statement by gateway_id"
        );
    }
}
