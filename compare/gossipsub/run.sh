#!/usr/bin/env bash
# Runs go-libp2p gossipsub (gsbench) and gossipmesh (mesh bench, flood and
# plumtree) side by side, alternating, on the same overlay seeds.
#
#   ./run.sh [MESH_BINARY] [OUTDIR]
#
# Env: NODES="10 50"  SEEDS="1 2 3"  SYSTEMS="gs flood plumtree gs6"
#      (gs: gossipsub on mesh bench's overlay, --peers 3; gsP: gossipsub with
#      --peers P; gsnosign: unsigned messages; flood, plumtree, lazy, fanout:
#      mesh bench --strategy X)
#      EXTRA="" (extra flags for every run, e.g. "--duration 1s")
# Every run writes OUTDIR/n<N>-s<S>-<system>.json (stdout) and .log (stderr);
# then `go run . --summarize OUTDIR` prints the table of medians.
set -u
here=$(cd "$(dirname "$0")" && pwd)
mesh=${1:-/tmp/mesh}
out=${2:-$here/results/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out" && out=$(cd "$out" && pwd) || exit 1
gs=$out/gsbench.bin
(cd "$here" && go build -o "$gs" .) || exit 1
NODES=${NODES:-"10 50"}
SEEDS=${SEEDS:-"1 2 3"}
SYSTEMS=${SYSTEMS:-"gs flood plumtree gs6"}
EXTRA=${EXTRA:-}
for s in $SEEDS; do
  for n in $NODES; do
    for sys in $SYSTEMS; do
      case $sys in
        gs)       cmd=("$gs" --nodes "$n" --seed "$s" --json) ;;
        gs[0-9]*) cmd=("$gs" --nodes "$n" --seed "$s" --peers "${sys#gs}" --json) ;;
        gsnosign) cmd=("$gs" --nodes "$n" --seed "$s" --sign=false --json) ;;
        flood|plumtree|lazy|fanout)
                  cmd=("$mesh" bench --nodes "$n" --seed "$s" --strategy "$sys" --json) ;;
        *) echo "unknown system $sys" >&2; exit 2 ;;
      esac
      f=$out/n$n-s$s-$sys
      echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg): ${cmd[*]} $EXTRA" | tee -a "$out/runs.txt"
      start=$EPOCHREALTIME
      # shellcheck disable=SC2086
      "${cmd[@]}" $EXTRA >"$f.json" 2>"$f.log"
      rc=$?
      echo "  rc $rc, $(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}') s" | tee -a "$out/runs.txt"
    done
  done
done
echo "results in $out"
