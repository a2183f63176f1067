/* req_int.h: what req.c, req_op.c and req_job.c share (not for the rest of the writer). */
#ifndef MOSQLITE_REQ_INT_H
#define MOSQLITE_REQ_INT_H

#include "req.h"

/* p grown to hold need items of size bytes (capacity doubled from 8, kept in *cap);
 * NULL when out of memory (p is then still valid). */
void *req_grow(void *p, int *cap, int need, size_t size);

/* One operation object o (r->root for a lone request) into *op. */
int req_op_read(struct req *r, const struct schema *s, const cJSON *o, const char *topic_table,
                struct req_op *op, char *err, size_t errlen);

/* The array "ops" of a transaction into r->ops, r->nops. */
int req_op_list(struct req *r, const struct schema *s, const struct req_limits *lim,
                const char *topic_table, const cJSON *ops, char *err, size_t errlen);

/* {"op": "cancel_job", "job": N} into *job; envelope: o is the request itself. */
int req_cancel_job_read(const cJSON *o, int envelope, long long *job, char *err, size_t errlen);

#endif
