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

# field KEY: the string KEY of firstboot status --json.
field() { firstboot status --json | sed -n "s/^  \"$1\": \"\(.*\)\",\$/\1/p"; }

# report_node: what this node is, as "NBK NODE key=value" lines on the
# serial console: its first boot's result, role and name, its machine-id
# and SSH host key (hashed), Cluster API's success file and what its
# commands and unit left, its address, how many of the control plane's
# images it has, when its workloads' images were in. On a failed first boot it adds why,
# as "NBK-LOG NODE" lines, and fails.
report_node() {
	me=$(hostname)
	nbk() { echo "NBK $me $*" >/dev/ttyS0; }
	nbk firstboot=$(field result) role=$(field role) node=$(field nodeName)
	nbk machine_id=$(cat /etc/machine-id) ssh_host_key=$(cut -d' ' -f2 /etc/ssh/ssh_host_ed25519_key.pub | sha256sum | cut -c1-16)
	nbk success_file=$([ -f /run/cluster-api/bootstrap-success.complete ] && echo yes || echo no) \
		pre=$([ -f /run/capi-test-pre ] && echo yes || echo no) post=$([ -f /run/capi-test-post ] && echo yes || echo no)
	nbk kubeadm_yml=$([ -e /etc/kubeadm.yml ] && echo in-etc || echo moved) kubeadm_unit=$(systemctl is-enabled kubeadm.service 2>/dev/null)
	nbk ip=$(ip -4 -o addr show scope global | awk '{print $4}' | head -1) envsubst=$(command -v envsubst)
	# The control plane's images are imported on a control plane only.
	nbk control_plane_images=$(ctr -n k8s.io images ls -q | grep -cE '/(etcd|kube-apiserver|kube-controller-manager|kube-scheduler):')
	# When the workloads' images were in, by this node's clock (the
	# kubelet's, which times its Ready condition).
	nbk workloads_at=$(date -u -d "$(systemctl show -P ActiveEnterTimestamp nodebake-images-workloads.service)" +%Y-%m-%dT%H:%M:%SZ)
	[ "$(field result)" = success ] && return 0
	# What the test needs to say why: the agent's record and journal, the
	# containers kubeadm started and their logs, the kubelet's journal.
	{
		firstboot status
		journalctl -b -u firstboot.service -o cat | tail -60
		crictl ps -a
		for c in kube-apiserver etcd kube-controller-manager; do
			id=$(crictl ps -a --name $c -q | head -1)
			[ -n "$id" ] && crictl logs --tail 40 "$id" 2>&1 | sed "s/^/$c: /"
		done
		journalctl -b -u kubelet.service -o cat | tail -40
		free -m; uptime
	} 2>&1 | sed "s/^/NBK-LOG $me /" >/dev/ttyS0
	return 1
}
