-- 001_builds.sql: the example schema, a build-farm appliance.
-- Builds, and their log lines as they are produced. Applied once, in its own
-- transaction, by mosqlite-writer at start; PRAGMA user_version records it.

CREATE TABLE builds (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'running'
                CHECK (status IN ('queued', 'running', 'passed', 'failed', 'cancelled')),
    started_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    finished_at TEXT
);

-- build_id is not a foreign key on purpose: a log line may arrive before the build
-- row (producers are independent), and must not be rejected for it.
CREATE TABLE build_logs (
    id       INTEGER PRIMARY KEY,
    build_id INTEGER NOT NULL,
    line     TEXT NOT NULL,
    ts       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE INDEX build_logs_by_build ON build_logs (build_id, id);
