/* defaults.h: the defaults more than one program shares, written once: the broker
 * every program talks to, the topic prefix, the MQTT keepalive, and the largest
 * request (the writer's max-payload, and so mosqlite-pub's longest JSON Lines line).
 * Header only: libmosqlite (publisher/client.c) reads it too. */
#ifndef MOSQLITE_DEFAULTS_H
#define MOSQLITE_DEFAULTS_H

#define MOSQLITE_DEFAULT_HOST        "127.0.0.1"
#define MOSQLITE_DEFAULT_PORT        1883
#define MOSQLITE_DEFAULT_PREFIX      "mosqlite"
#define MOSQLITE_DEFAULT_KEEPALIVE   30          /* seconds */
#define MOSQLITE_DEFAULT_MAX_PAYLOAD 262144      /* bytes */

#endif
