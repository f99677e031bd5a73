-- Gateway buffer, version 2: text attributes of sensors and durable component state.

-- Text values read from devices (serial numbers, firmware versions): the latest per sensor.
CREATE TABLE attributes (
    sensor TEXT PRIMARY KEY,
    value  TEXT NOT NULL,
    ts     INTEGER NOT NULL
) WITHOUT ROWID;

-- Small facts a component learns and must keep across restarts
-- (e.g. the Modbus address holes a device rejected), as JSON under a component-chosen key.
CREATE TABLE component_state (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
) WITHOUT ROWID;
