#!/bin/sh
# The cluster test's watch, on every node: every two minutes, what a
# person debugging a failed run would ask first, as "NBD" lines on the
# serial console. The test judges nothing here; it prints these lines
# when it fails. Every 2 min: under TCG the watch's own kubectl and top
# cost the control plane CPU.
out() { sed "s/^/NBD $(hostname) /" >/dev/ttyS0; }
while sleep 120; do
	{
		echo "uptime $(cut -d' ' -f1 /proc/uptime) firstboot $(systemctl is-active firstboot) kubelet $(systemctl is-active kubelet)"
		# Who has the CPU: a starved API server shows here first.
		top -b -n 1 -o %CPU | sed -n '7,13p'
		if [ -f /etc/kubernetes/admin.conf ]; then
			k="kubectl --kubeconfig /etc/kubernetes/admin.conf --request-timeout=20s"
			$k get nodes --no-headers
			$k get csr --no-headers
			$k get pods -A --no-headers | grep -v ' Running '
		else
			journalctl -b -u kubelet -n 4 -o cat | cut -c1-300
		fi
		# This node's containers, and etcd's last words: a control plane
		# whose API server cannot reach etcd shows why here.
		crictl ps -a 2>&1 | tail -n +2 | cut -c1-200
		for id in $(crictl ps -q --name '^etcd$' 2>/dev/null | head -1); do
			crictl logs --tail 8 "$id" 2>&1 | cut -c1-400 | sed "s/^/log etcd (running): /"
		done
		# The containers that exited, and why: the end of the log of each
		# (an init container's exit is the normal one).
		for id in $(crictl ps -a --state exited -q 2>/dev/null | head -4); do
			name=$(crictl inspect -o go-template --template '{{.status.metadata.name}}' "$id" 2>/dev/null)
			case "$name" in install-cni*) continue ;; esac
			crictl logs --tail 6 "$id" 2>&1 | cut -c1-300 | sed "s/^/log $name: /"
		done
	} 2>&1 | out
done
