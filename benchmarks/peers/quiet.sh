# Sourced by ./run and ./ours; needs a log function.
#
# wait_quiet: other people's builds share these two cores. Before each shape, wait (at most
# PEERS_QUIET_WAIT seconds, default 300) until the machine's busy time over 10 s is below
# PEERS_QUIET_CORES (default 0.3 cores); then go on regardless, saying so.

# busy_cores: cores busy (anything but idle and iowait) over the next 10 s, from /proc/stat.
busy_cores() {
    local a b
    a=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat)
    sleep 10
    b=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", (b - a) / 1000 }'
}

wait_quiet() {
    local limit=$((SECONDS + ${PEERS_QUIET_WAIT:-300})) busy
    [[ ${PEERS_QUIET_WAIT:-300} != 0 ]] || return 0
    while :; do
        busy=$(busy_cores)
        if awk -v b="$busy" -v m="${PEERS_QUIET_CORES:-0.3}" 'BEGIN { exit !(b < m) }'; then
            log "machine quiet enough: $busy cores busy over 10 s (load $(cut -d' ' -f1-3 /proc/loadavg))"
            return
        fi
        if ((SECONDS >= limit)); then
            log "machine still busy ($busy cores over 10 s, load $(cut -d' ' -f1-3 /proc/loadavg)): going on anyway"
            return
        fi
        log "machine busy ($busy cores over 10 s): waiting"
    done
}
