#!/bin/sh
# Run each fuzz target for a while: ci/fuzz.sh [DURATION], 20s by default
# (make test), longer from make fuzz. A crasher fails the run and is left
# in the package's testdata/fuzz, where go test then replays it.
set -eu
time="${1:-20s}"
targets="
./internal/profile FuzzProfile
./internal/ignitioncfg FuzzParseCheck
./internal/kubeadm FuzzParseConfig
./internal/inspect FuzzImage
"
echo "$targets" | while read -r pkg target; do
	[ -n "$pkg" ] || continue
	echo "fuzz: $target ($pkg) for $time"
	go test -count=1 -run '^$' -fuzz "^$target\$" -fuzztime "$time" -fuzzminimizetime 10s "$pkg"
done
