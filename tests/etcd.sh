# etcd.sh: sourced after lib.sh by the tests that need etcd. A real 3-member etcd
# cluster (Debian's etcd-server) on free loopback ports, each member's data in the test's
# temp dir, every member killed by lib.sh's EXIT trap.
#
#   etcd_cluster_start          start members 1 2 3, wait until the cluster is healthy;
#                               sets ETCD_ENDPOINTS (URL,URL,URL) and ETCD_EP1..3
#   etcd_kill N / etcd_stop N / etcd_cont N
#                               SIGKILL, SIGSTOP or SIGCONT member N
#   etcd_restart N              start member N again on its ports and data
#   etcdctl_ ARGS...            etcdctl against the members (3 s timeout)
#   etcd_get KEY                the value of KEY, or nothing
#   etcd_leader                 the number of the member that is raft leader now
#
# Members elect a new raft leader within about a second of losing one (heartbeat 100 ms,
# election timeout 500 ms; etcd's defaults are 100 ms and 1 s).

ETCD_DIR=$T/etcd

etcdctl_() { ETCDCTL_API=3 timeout 10 etcdctl --endpoints="$ETCD_ENDPOINTS" --command-timeout=3s "$@"; }
etcd_get() { etcdctl_ get --print-value-only "$1" 2>/dev/null; }

_etcd_member() {
    n=$1
    eval "cport=\$ETCD_CPORT$n; pport=\$ETCD_PPORT$n"
    mkdir -p "$ETCD_DIR/m$n"
    _state=new
    [ -d "$ETCD_DIR/m$n/data/member" ] && _state=existing
    etcd --name "m$n" --data-dir "$ETCD_DIR/m$n/data" \
        --listen-client-urls "http://127.0.0.1:$cport" --advertise-client-urls "http://127.0.0.1:$cport" \
        --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
        --initial-cluster "$ETCD_CLUSTER" --initial-cluster-state "$_state" \
        --initial-cluster-token "mosqlite-test-$$" --heartbeat-interval 100 --election-timeout 500 \
        >>"$ETCD_DIR/m$n/etcd.log" 2>&1 &
    eval "ETCD_PID$n=$!"
    PIDS="$PIDS $!"
}

etcd_healthy() { etcdctl_ endpoint health >/dev/null 2>&1; }

etcd_cluster_start() {
    command -v etcd >/dev/null || { fail "etcd is not installed (Debian: etcd-server)"; exit 1; }
    for _try in 1 2 3; do
        ETCD_CLUSTER= ETCD_ENDPOINTS=
        for n in 1 2 3; do
            eval "ETCD_CPORT$n=$(free_port); ETCD_PPORT$n=$(free_port)"
            eval "ETCD_CLUSTER=\${ETCD_CLUSTER:+\$ETCD_CLUSTER,}m$n=http://127.0.0.1:\$ETCD_PPORT$n"
            eval "ETCD_EP$n=http://127.0.0.1:\$ETCD_CPORT$n"
            eval "ETCD_ENDPOINTS=\${ETCD_ENDPOINTS:+\$ETCD_ENDPOINTS,}\$ETCD_EP$n"
        done
        rm -rf "$ETCD_DIR"
        for n in 1 2 3; do _etcd_member "$n"; done
        if wait_until 30 etcd_healthy; then
            note "etcd cluster up: $ETCD_ENDPOINTS"
            return 0
        fi
        note "etcd cluster did not become healthy; trying other ports"
        for n in 1 2 3; do eval "kill -9 \$ETCD_PID$n" 2>/dev/null; done
    done
    fail "etcd cluster did not start"; tail -20 "$ETCD_DIR"/m*/etcd.log; exit 1
}

etcd_leader() {
    _l=$(etcdctl_ endpoint status 2>/dev/null | awk -F', ' '$5 == "true" { print $1 }')
    for n in 1 2 3; do eval "[ \"\$ETCD_EP$n\" = \"$_l\" ] && echo $n"; done
    return 0
}
etcd_kill() { eval "kill -9 \$ETCD_PID$1" 2>/dev/null; eval "wait \$ETCD_PID$1" 2>/dev/null; }
etcd_stop() { eval "kill -STOP \$ETCD_PID$1"; }
etcd_cont() { eval "kill -CONT \$ETCD_PID$1"; }
etcd_restart() { _etcd_member "$1"; }
