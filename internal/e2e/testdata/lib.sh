# The test probes' shared functions, sourced from /etc/nodebake-test/lib.sh.
# kubectl calls are few and long: under TCG every new kubectl costs a
# second or more of the CPU the control plane is short of. A watch
# (kubectl wait) waits in one process; a call that fails (a slow API
# server) is tried again.

# retry CMD...: CMD's output once it succeeds with some, up to 10 tries.
retry() {
	n=0
	until v=$("$@" 2>/dev/null) && [ -n "$v" ]; do
		n=$((n + 1)); [ $n -ge 10 ] && break; sleep 15
	done
	echo "$v"
}

# waitfor SECONDS ARGS: kubectl wait ARGS until it succeeds or the time is up.
waitfor() {
	end=$(($(date +%s) + $1)); shift
	until kubectl wait --timeout=5m "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -ge "$end" ] && return 1
		sleep 15
	done
}
