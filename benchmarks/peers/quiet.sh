# Sourced by ./run and ./ours; needs a log function.
#
# wait_quiet: other people's builds share these two cores. Before each measurement, wait (at
# most PEERS_QUIET_WAIT seconds, default 120) until the machine's busy time over a few seconds
# is below PEERS_QUIET_CORES (default 0.3 cores); then go on regardless, saying so. All the
# waits of one run together last at most PEERS_QUIET_BUDGET seconds (default 1800), so a
# machine that never quiets down still gets a run that ends.
quiet_spent=0

# busy_cores: cores busy (anything but idle and iowait) over the next PEERS_QUIET_SAMPLE
# seconds (default 5), from /proc/stat.
busy_cores() {
    local a b t=${PEERS_QUIET_SAMPLE:-5}
    a=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat)
    sleep "$t"
    b=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat)
    awk -v a="$a" -v b="$b" -v t="$t" 'BEGIN { printf "%.2f", (b - a) / 100 / t }'
}

wait_quiet() {
    local began=$SECONDS busy
    local limit=$((SECONDS + ${PEERS_QUIET_WAIT:-120}))
    local budget_end=$((SECONDS + ${PEERS_QUIET_BUDGET:-1800} - quiet_spent))
    ((budget_end < limit)) && limit=$budget_end
    ((limit > SECONDS)) || return 0
    while :; do
        busy=$(busy_cores)
        if awk -v b="$busy" -v m="${PEERS_QUIET_CORES:-0.3}" 'BEGIN { exit !(b < m) }'; then
            log "machine quiet enough: $busy cores busy over ${PEERS_QUIET_SAMPLE:-5} s (load $(cut -d' ' -f1-3 /proc/loadavg))"
            quiet_spent=$((quiet_spent + SECONDS - began))
            return
        fi
        if ((SECONDS >= limit)); then
            log "machine still busy ($busy cores over ${PEERS_QUIET_SAMPLE:-5} s, load $(cut -d' ' -f1-3 /proc/loadavg)): going on anyway"
            quiet_spent=$((quiet_spent + SECONDS - began))
            return
        fi
        log "machine busy ($busy cores over ${PEERS_QUIET_SAMPLE:-5} s): waiting"
    done
}
