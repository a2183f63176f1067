#!/bin/bash
# Fault: the broker keeps the writer's request session without its subscription. That is
# what a writer stopped (SIGTERM, kill -9, crash, power loss) after its request
# connection's CONNECT and before the broker processed its SUBSCRIBE leaves behind: a
# later writer finds "session resumed" and must still end up subscribed, or every
# request is dropped by the broker for want of a subscriber. Made here the way the
# broker would hold it: a client with the writer's client id subscribes to an unrelated
# topic with a persistent session and leaves. For each request protocol (3.1.1, 5):
#   - such a session and no record beside the database: the writer subscribes, and a
#     request published afterwards is applied;
#   - the same session again (the record beside the database names it): no SUBSCRIBE,
#     so a retained request is not sent to the writer again;
#   - a record for another client id: the writer subscribes on the resumed session.
# Each time the writer says "online" only once the broker has its subscription.
. "$(dirname "$0")/lib.sh"

broker_start

# session_without_subscription ID PROTO: the broker keeps a session for client id ID,
# subscribed only to an unrelated topic.
session_without_subscription() {
    if [ "$2" = 5 ]; then
        timeout -k 2 20 mosquitto_sub -p "$MQTT_PORT" -V 5 -x 4294967295 -c -i "$1" -q 1 -t "unrelated/$1" -E
    else
        timeout -k 2 20 mosquitto_sub -p "$MQTT_PORT" -c -i "$1" -q 1 -t "unrelated/$1" -E
    fi
}
# subscribes_of ID: how many SUBSCRIBEs to the write filter the broker logged for ID.
subscribes_of() { grep -c " $1 [0-9] $PREFIX_TOPIC/write/#\$" "$T/broker/mosquitto.log"; }
applied() { [ "$(sql "SELECT count(*) FROM build_logs WHERE build_id = $1 AND line = '$2'")" = 1 ]; }

n=0
for proto in 3.1.1 5; do
    n=$((n + 1))
    DB=$T/s$n.db
    id=w-session-$n
    check "proto $proto: mosquitto_sub leaves a session for $id" session_without_subscription "$id" "$proto"

    writer_start --client-id "$id" --request-protocol "$proto"
    check "proto $proto: the writer found the session (resumed)" grep -q "request connection up .*session resumed" "$WRITER_LOG"
    # "online" only once the subscription is acknowledged: the broker has logged it.
    check_eq "proto $proto: online, and subscribed on the resumed session" "$(subscribes_of "$id")" 1
    pub write '{"id":"s-'$n'-1","table":"build_logs","values":{"build_id":'$((90 + n))',"line":"1"}}'
    wait_until 15 applied $((90 + n)) 1
    check "proto $proto: a request published after the start is applied" applied $((90 + n)) 1
    writer_stop

    # The same session, now subscribed and recorded: a retained request published while
    # the writer is stopped is queued once (applied); a resubscribe would send it again.
    pub write '{"id":"s-'$n'-2","table":"build_logs","values":{"build_id":'$((90 + n))',"line":"2"}}' -r
    writer_start --client-id "$id" --request-protocol "$proto"
    pub write '{"id":"s-'$n'-3","table":"build_logs","values":{"build_id":'$((90 + n))',"line":"3"}}'
    wait_until 15 applied $((90 + n)) 3
    check "proto $proto: restarted on its recorded session: applied" applied $((90 + n)) 3
    check_eq "proto $proto: no SUBSCRIBE on a recorded session" "$(subscribes_of "$id")" 1
    writer_stop
    mosquitto_pub -p "$MQTT_PORT" -t "$PREFIX_TOPIC/write" -r -n

    # The record names another client id: a resumed session of this one gets subscribed.
    check "proto $proto: a session for $id-b" session_without_subscription "$id-b" "$proto"
    writer_start --client-id "$id-b" --request-protocol "$proto"
    check_eq "proto $proto: online, and subscribed" "$(subscribes_of "$id-b")" 1
    pub write '{"id":"s-'$n'-4","table":"build_logs","values":{"build_id":'$((90 + n))',"line":"4"}}'
    wait_until 15 applied $((90 + n)) 4
    check "proto $proto: another client id on the same database: applied" applied $((90 + n)) 4
    writer_stop
    # Over 3.1.1 the queued copy of the retained request was applied; a copy sent again
    # for a new subscription would carry the retain flag and be rejected.
    if [ "$proto" = 3.1.1 ]; then
        check_eq "proto $proto: no retained copy sent again (nothing rejected)" \
            "$(sql 'SELECT count(*) FROM mosqlite_rejected')" 0
    fi
done
