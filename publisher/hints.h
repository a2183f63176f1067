/* hints.h: mosqlite-pub's readings of a request, for its messages (hints.c). */
#ifndef MOSQLITE_HINTS_H
#define MOSQLITE_HINTS_H

/* 1 when the request json (a NUL-terminated JSON object) only updates or deletes: its
 * "op", or every op of its "ops". */
int only_updates(const char *json);

/* When data, given as the row of TABLE, is a whole request instead (all its members are
 * request fields, with an object in values, set or where, or an array in ops), the
 * member that shows it ("ops", "set", "where" or "values", the strongest sign first),
 * and *deletes when its op is delete; else NULL. A row of a table whose columns are so
 * named goes as a JSON Lines request (`-`). */
const char *envelope_of(const char *data, int *deletes);

/* Say on stderr what to give instead of such a request (key from envelope_of; upsert:
 * --op upsert was given). */
void envelope_hint(const char *key, int deletes, int upsert, const char *table);

#endif
