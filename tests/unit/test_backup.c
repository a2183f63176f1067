/* test_backup.c: the names a backup may not take beside the database (backup.c). */
#include "backup.h"
#include "unit.h"

void test_backup(void)
{
    static const char *const live[] = {
        "app.db", "app.db-wal", "app.db-shm", "app.db-journal", "app.db-writer.lock",
        "app.db-writer.session",
        "app.db-mj0A1B2C3D", "app.db.snapshot-4242", "app.db.snapshot-", "app.db.incoming", NULL,
    };
    static const char *const fine[] = {
        "app.db.bak", "app.db-2026-11-24", "app.db-writer", "app.db.incoming.1", "app.dbx",
        "nightly.db", "app", "app.db-wal.bak", NULL,
    };
    int i, ok;

    for (i = 0, ok = 1; live[i]; i++)
        if (!backup_name_is_live("app.db", live[i])) {
            unit_note("not refused: %s", live[i]);
            ok = 0;
        }
    unit_check(ok, "backup: the database's files and what could become one refused");
    for (i = 0, ok = 1; fine[i]; i++)
        if (backup_name_is_live("app.db", fine[i])) {
            unit_note("refused: %s", fine[i]);
            ok = 0;
        }
    unit_check(ok, "backup: other names beside the database allowed");
}
