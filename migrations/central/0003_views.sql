-- Central schema, version 3: the office's views. They run with their owner's rights, so grant an
-- office reader SELECT on them rather than on the tables (docs/central-schema.md, "Roles").

-- The latest reading of every sensor, with its metadata and building. Sensors that never
-- reported have NULL reading columns; readings of sensors without metadata have NULL metadata.
CREATE VIEW markoff.latest_readings AS
SELECT g.building_id,
       coalesce(s.gateway_id, l.gateway_id) AS gateway_id,
       coalesce(s.sensor_id, l.sensor_id) AS sensor_id,
       s.key,
       s.name,
       s.kind,
       s.unit,
       s.floor,
       s.room,
       s.source,
       l.seq,
       l.ts,
       l.value,
       l.quality,
       CASE l.quality WHEN 0 THEN 'good' WHEN 1 THEN 'bad' WHEN 2 THEN 'stale' WHEN 3 THEN 'comm_error' END
           AS quality_name
FROM markoff.sensors s
FULL JOIN markoff.sensor_latest l USING (gateway_id, sensor_id)
JOIN markoff.gateways g ON g.gateway_id = coalesce(s.gateway_id, l.gateway_id);

-- Alarms not back to normal: the latest event of each alarm, when its state is not 'normal'.
CREATE VIEW markoff.active_alarms AS
SELECT g.building_id, e.*
FROM (
    SELECT DISTINCT ON (gateway_id, alarm_id) *
    FROM markoff.alarm_events
    ORDER BY gateway_id, alarm_id, seq DESC
) e
JOIN markoff.gateways g USING (gateway_id)
WHERE e.state <> 'normal';

-- One row per gateway: when it was last in contact and how far behind the centre is.
-- lag_rows: readings the gateway reported having but not yet uploaded (NULL until it reports);
-- lag_seconds: age of the newest reading that arrived (NULL before the first one).
CREATE VIEW markoff.gateway_health AS
SELECT g.gateway_id,
       g.building_id,
       g.role_name,
       g.removed_at IS NULL AS active,
       g.created_at,
       g.last_contact,
       rc.last_seq AS readings_seq,
       rc.head_seq AS readings_head_seq,
       rc.newest_ts AS newest_reading,
       rc.updated_at AS readings_synced_at,
       CASE WHEN rc.head_seq IS NOT NULL THEN greatest(rc.head_seq - coalesce(rc.last_seq, 0), 0) END
           AS lag_rows,
       extract(epoch FROM now() - rc.newest_ts)::double precision AS lag_seconds,
       ac.last_seq AS alarm_events_seq,
       CASE WHEN ac.head_seq IS NOT NULL THEN greatest(ac.head_seq - coalesce(ac.last_seq, 0), 0) END
           AS alarm_events_lag_rows,
       mc.last_seq AS metadata_version,
       mc.updated_at AS metadata_synced_at
FROM markoff.gateways g
LEFT JOIN markoff.sync_cursors rc ON rc.gateway_id = g.gateway_id AND rc.stream = 'readings'
LEFT JOIN markoff.sync_cursors ac ON ac.gateway_id = g.gateway_id AND ac.stream = 'alarm_events'
LEFT JOIN markoff.sync_cursors mc ON mc.gateway_id = g.gateway_id AND mc.stream = 'metadata';

REVOKE ALL ON markoff.latest_readings, markoff.active_alarms, markoff.gateway_health FROM PUBLIC;
