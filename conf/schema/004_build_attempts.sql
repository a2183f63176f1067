-- 004_build_attempts.sql: a build run again is a new attempt, its log kept apart.
-- The build wrapper (`mosqlite-pub --lines ... -- COMMAND`) picks the attempt itself,
-- without asking anyone: the time it started, in Unix milliseconds (or the `attempt` of
-- its --with). Every line it captures carries it, and its start records it in the build's
-- row, which describes the latest attempt. The page numbers a build's attempts 1, 2, ...
-- in that order. Rows from before (and lines of the plain log pipe) are attempt 0.
-- A build's lines are read an attempt at a time, by id: the index leads with both.

ALTER TABLE builds ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE build_logs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
DROP INDEX build_logs_by_build;
CREATE INDEX build_logs_by_attempt ON build_logs (build_id, attempt, id);
