# Sourced by ./run and ./ours (after quiet.sh); needs log, $out and $sat_start.
#
# measure STEP RATE NAME: waits for a quiet machine, then runs `STEP RATE NAME`, which must
# leave $out/NAME.json with at least .sustained and .other_cores (the CPU that other work took
# during the measured window, in cores). A run that other work disturbed (more than
# PEERS_DISTURBED cores, default 0.3) is run once more while the wait budget of quiet.sh lasts,
# and the second result is kept (the first stays in $out as NAME-disturbed.json). Returns 0
# when the rate was sustained.
measure() {
    local step=$1 rate=$2 name=$3 other
    wait_quiet
    "$step" "$rate" "$name"
    other=$(jq -r '.other_cores // 0' "$out/$name.json" 2>/dev/null || echo 0)
    if ((quiet_spent < ${PEERS_QUIET_BUDGET:-1800})) &&
        awk -v o="$other" -v m="${PEERS_DISTURBED:-0.3}" 'BEGIN { exit !(o > m) }'; then
        log "$name: other work took $other cores during the window: measuring it again"
        mv "$out/$name.json" "$out/$name-disturbed.json"
        wait_quiet
        "$step" "$rate" "$name"
    fi
    [[ $(jq -r '.sustained // false' "$out/$name.json" 2>/dev/null) == true ]]
}

# ladder STEP PREFIX: the saturation search. From $sat_start msgs/s the rate doubles until a
# rate is not sustained, then three bisections between the last sustained and the first
# failed rate narrow it down (at most 12 runs). Every rate runs on a fresh server (STEP's
# job), so an overloaded run's backlog never reaches the next. Sets ladder_best to the
# highest sustained rate (empty if none was).
ladder() {
    local step=$1 prefix=$2 lo=0 hi=0 rate=$sat_start runs=0 mid i
    ladder_best=
    while ((runs < 12)); do
        runs=$((runs + 1))
        if measure "$step" "$rate" "$prefix-$rate"; then
            lo=$rate ladder_best=$rate rate=$((rate * 2))
        else
            hi=$rate
            break
        fi
    done
    for i in 1 2 3; do
        ((hi > 0 && runs < 12)) || break
        mid=$(((lo + hi) / 2))
        ((mid > lo && mid < hi)) || break
        runs=$((runs + 1))
        if measure "$step" "$mid" "$prefix-$mid"; then
            lo=$mid ladder_best=$mid
        else
            hi=$mid
        fi
    done
}
