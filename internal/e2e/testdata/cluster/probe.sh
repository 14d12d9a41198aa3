#!/bin/sh
# The cluster test's probe, on every node: one script, since the nodes
# boot from Cluster API's user data and the workers from one user data.
# Every node reports what it is as "NBK NODE key=value" lines on the
# serial console. On the control plane it then judges the cluster, as "NBC
# key=value" lines: every node Ready, a pod from a baked image on each
# worker, worker-a rebooted and Ready again; done=1 ends it. worker-a
# reboots once its pod ran, and reports each boot as "NBW boot=N" lines.
# The test on the host judges the lines.
. /etc/nodebake-test/lib.sh
cluster() { echo "NBC $*" >/dev/ttyS0; }
mkdir -p /var/lib/nodebake-test
boot=$(( $(cat /var/lib/nodebake-test/boots 2>/dev/null || echo 0) + 1 ))
echo $boot >/var/lib/nodebake-test/boots
sync
rebooter() {
	[ "$(hostname)" = worker-a ] || return 0
	out() { echo "NBW boot=$boot $*" >/dev/ttyS0; }
	out firstboot=$(field result) runs=$(firstboot status --json | sed -n 's/^  "runs": \([0-9]*\),$/\1/p') \
		journal_already=$(journalctl -b -u firstboot.service -o cat | grep -q 'already configured' && echo yes || echo no) \
		success_file=$([ -f /run/cluster-api/bootstrap-success.complete ] && echo yes || echo no)
	if [ "$boot" -gt 1 ]; then
		# The agent is done at once on a configured node, while the
		# kubelet still waits for the check of the baked images
		# (nodebake-images.service): give it two minutes to start.
		i=0
		until systemctl is-active -q kubelet || [ $i -ge 24 ]; do i=$((i + 1)); sleep 5; done
		out kubelet=$(systemctl is-active kubelet)
		return 0
	fi
	# The control plane's test pod is restarted until it succeeds; the
	# node's own credentials may read a pod bound to it. The kubelet
	# reports the pod's end, and the control plane reads the pod's log,
	# before the node goes away.
	i=0
	until [ "$(kubectl --kubeconfig /etc/kubernetes/kubelet.conf get pod probe-worker-a -o jsonpath='{.status.phase}' 2>/dev/null)" = Succeeded ]; do
		i=$((i + 1)); [ $i -gt 60 ] && break; sleep 30
	done
	sleep 90
	out action=reboot
	systemctl reboot
}
# A second boot reports only that it did not configure the node again.
[ "$boot" -gt 1 ] && { rebooter; exit 0; }
if ! report_node; then
	[ "$(field role)" = init ] && cluster done=1
	exit 1
fi
[ "$(field role)" = init ] || { rebooter; exit 0; }

export KUBECONFIG=/etc/kubernetes/admin.conf
cluster firstboot=success
log() { sed 's/^/NBC-LOG /' >/dev/ttyS0; }
# Every node Ready; each node's Ready time is read from its condition.
# The workers the test boots are named in /etc/nodebake-test/workers.
workers=$(cat /etc/nodebake-test/workers)
nodes="cp-1 $workers"
count=$(echo $nodes | wc -w)
ready() { kubectl get node "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}'; }
for n in $workers; do waitfor 1800 --for=create node/$n; done
waitfor 1800 --for=condition=Ready nodes --all
for n in $nodes; do
	cluster ready.$n=$(retry ready $n) ready_at.$n=$(retry kubectl get node $n -o jsonpath='{.status.conditions[?(@.type=="Ready")].lastTransitionTime}')
done
cluster nodes=$(retry kubectl get nodes -o jsonpath='{range .items[*]}{.metadata.name},{end}')
retry kubectl get nodes -o wide | log
# A pod from a baked image on each worker: agnhost connects to the API
# server's service by its DNS name, through CoreDNS and kube-proxy. The
# pods start once CoreDNS is available and flannel and kube-proxy run on
# every node (a node is Ready before its pod network carries an answer),
# and each is restarted until it succeeds: on a starved control plane
# flannel may still be restarting.
waitfor 1200 -n kube-system --for=condition=Available deployment/coredns
waitfor 900 -n kube-flannel --for=jsonpath='{.status.numberReady}'=$count daemonset/kube-flannel-ds
waitfor 900 -n kube-system --for=jsonpath='{.status.numberReady}'=$count daemonset/kube-proxy
cluster coredns_available=$(retry kubectl -n kube-system get deployment coredns -o jsonpath='{.status.conditions[?(@.type=="Available")].status}') \
	flannel_ready=$(retry kubectl -n kube-flannel get daemonset kube-flannel-ds -o jsonpath='{.status.numberReady}')
for w in $workers; do
	n=0
	until kubectl get pod probe-$w -o name >/dev/null 2>&1; do
		kubectl run probe-$w --image=registry.k8s.io/e2e-test-images/agnhost:2.66.1 --restart=OnFailure \
			--overrides="{\"spec\":{\"nodeSelector\":{\"kubernetes.io/hostname\":\"$w\"}}}" \
			--command -- /agnhost connect --timeout=20s kubernetes.default.svc.cluster.local:443 >/dev/null 2>&1
		n=$((n + 1)); [ $n -ge 10 ] && break; sleep 15
	done
done
failed=
for w in $workers; do
	i=0
	while :; do
		phase=$(kubectl get pod probe-$w -o jsonpath='{.status.phase}' 2>/dev/null)
		case "$phase" in Succeeded|Failed) break ;; esac
		i=$((i + 1)); [ $i -gt 80 ] && break; sleep 15
	done
	[ "$phase" = Succeeded ] || failed=yes
	cluster pod_phase.$w=$phase pod_restarts.$w=$(kubectl get pod probe-$w -o jsonpath='{.status.containerStatuses[0].restartCount}') \
		pod_node.$w=$(retry kubectl get pod probe-$w -o jsonpath='{.spec.nodeName}') \
		pod_image_pulled.$w=$(kubectl get events --field-selector involvedObject.name=probe-$w -o jsonpath='{.items[*].reason}' | tr ' ' '\n' | grep -c '^Pulling$')
	kubectl logs probe-$w 2>&1 | sed "s/^/pod $w: /" | log
done
if [ -n "$failed" ]; then
	# The pods reach the API server through kube-proxy's rules and
	# CoreDNS: what they said last.
	kubectl describe pods -l run 2>&1 | tail -30 | sed 's/^/describe: /' | log
	kubectl -n kube-system logs -l k8s-app=kube-proxy --prefix --tail 15 2>&1 | log
	kubectl -n kube-system logs -l k8s-app=kube-proxy --prefix --tail 15 --previous 2>&1 | sed 's/^/previous /' | log
	kubectl -n kube-system logs -l k8s-app=kube-dns --prefix --tail 10 2>&1 | log
fi
retry kubectl get pods -A -o wide | log
# worker-a reboots once its pod is done; it must come back Ready with
# the same node, without joining again.
boot=$(retry kubectl get node worker-a -o jsonpath='{.status.nodeInfo.bootID}')
i=0
until [ "$(kubectl get node worker-a -o jsonpath='{.status.nodeInfo.bootID}' 2>/dev/null)" != "$boot" ] && [ "$(ready worker-a 2>/dev/null)" = True ]; do
	i=$((i + 1)); [ $i -gt 45 ] && break; sleep 20
done
cluster worker_rebooted=$([ "$(retry kubectl get node worker-a -o jsonpath='{.status.nodeInfo.bootID}')" != "$boot" ] && echo yes || echo no) worker_ready_after=$(retry ready worker-a)
cluster done=1
