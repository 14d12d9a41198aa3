#!/bin/sh
# Run each fuzz target: ci/fuzz.sh [SCALE], 1 by default (make test, about
# 10 s a target here), larger from make fuzz. A crasher fails the run and
# is left in the package's testdata/fuzz, where go test then replays it.
#
# Each target's budget is a number of executions (-fuzztime Nx), sized to
# its speed, never a duration: with a duration, Go 1.26's fuzzing
# coordinator races its own deadline and can fail a target that found
# nothing ("context deadline exceeded", no crasher; go.dev/issue/75804,
# fixed in Go 1.27). A count has no deadline to race.
set -eu
scale="${1:-1}"
case "$scale" in
'' | *[!0-9]*) echo "ci/fuzz.sh: SCALE must be a whole number, not $scale" >&2; exit 2 ;;
esac
# package, target, executions at scale 1: about 10 s each on 2 cores.
targets="
./internal/profile FuzzProfile 400000
./internal/ignitioncfg FuzzParseCheck 150000
./internal/kubeadm FuzzParseConfig 200000
./internal/inspect FuzzImage 10000
"
echo "$targets" | while read -r pkg target n; do
	[ -n "$pkg" ] || continue
	n=$((n * scale))
	echo "fuzz: $target ($pkg), $n executions"
	go test -count=1 -run '^$' -fuzz "^$target\$" -fuzztime "${n}x" -fuzzminimizetime 1000x "$pkg"
done
