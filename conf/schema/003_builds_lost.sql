-- 003_builds_lost.sql: a build can be `lost`. The build wrapper leaves a last will with
-- the broker; when the wrapper dies without ending the build (kill -9, the machine
-- gone), the broker publishes it and the build's row goes from `running` to `lost`
-- instead of staying `running` for ever. SQLite cannot change a CHECK constraint in
-- place, so the table is made again with the new one and its rows copied over.

CREATE TABLE builds_new (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'running'
                CHECK (status IN ('queued', 'running', 'passed', 'failed', 'cancelled', 'lost')),
    started_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    finished_at TEXT,
    exit_code   INTEGER,
    duration_ms INTEGER
);
INSERT INTO builds_new (id, name, status, started_at, finished_at, exit_code, duration_ms)
    SELECT id, name, status, started_at, finished_at, exit_code, duration_ms FROM builds;
DROP TABLE builds;
ALTER TABLE builds_new RENAME TO builds;
