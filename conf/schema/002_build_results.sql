-- 002_build_results.sql: how a build ended, and which stream a log line came from.
-- `mosqlite-pub --lines ... -- COMMAND` records the command's exit status and how long
-- it ran when it finishes; a line it captured says whether the command wrote it to
-- stdout or stderr (NULL for lines piped in, where that is not known).

ALTER TABLE builds ADD COLUMN exit_code INTEGER;
ALTER TABLE builds ADD COLUMN duration_ms INTEGER;
ALTER TABLE build_logs ADD COLUMN stream TEXT CHECK (stream IN ('stdout', 'stderr'));
