#!/bin/sh
# The two-node cluster test's probe on the control-plane node. It reports
# "NBC key=value" lines on the serial console; the test judges them.
out() { echo "NBC $*" >/dev/ttyS0; }
export KUBECONFIG=/etc/kubernetes/admin.conf
result=$(firstboot status --json | sed -n 's/^  "result": "\(.*\)",$/\1/p')
out firstboot=$result
if [ "$result" != success ]; then
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
	} 2>&1 | sed 's/^/NBC-LOG /' >/dev/ttyS0
	out done=1
	exit 1
fi
. /etc/nodebake-test/lib.sh
# Both nodes Ready (each node's Ready time is read from its condition).
ready() { kubectl get node "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}'; }
waitfor 1800 --for=create node/worker-1 && waitfor 1800 --for=condition=Ready node/cp-1 node/worker-1
for n in cp-1 worker-1; do
	out ready.$n=$(retry ready $n) ready_at.$n=$(retry kubectl get node $n -o jsonpath='{.status.conditions[?(@.type=="Ready")].lastTransitionTime}')
done
retry kubectl get nodes -o wide | sed 's/^/NBC-LOG /' >/dev/ttyS0
retry kubectl get pods -A -o wide | sed 's/^/NBC-LOG /' >/dev/ttyS0
# A pod from a baked image on the worker: agnhost connects to the API
# server's service by its DNS name, through CoreDNS and kube-proxy. It
# starts once CoreDNS is available and flannel and kube-proxy run on both
# nodes (a node is Ready before its pod network carries an answer), and
# it is restarted until it succeeds: on a starved control plane flannel
# may still be restarting (a run lost the DNS answer from cp-1 that way).
waitfor 1200 -n kube-system --for=condition=Available deployment/coredns
waitfor 900 -n kube-flannel --for=jsonpath='{.status.numberReady}'=2 daemonset/kube-flannel-ds
waitfor 900 -n kube-system --for=jsonpath='{.status.numberReady}'=2 daemonset/kube-proxy
out coredns_available=$(retry kubectl -n kube-system get deployment coredns -o jsonpath='{.status.conditions[?(@.type=="Available")].status}') \
	flannel_ready=$(retry kubectl -n kube-flannel get daemonset kube-flannel-ds -o jsonpath='{.status.numberReady}')
n=0
until kubectl get pod probe-pod -o name >/dev/null 2>&1; do
	kubectl run probe-pod --image=registry.k8s.io/e2e-test-images/agnhost:2.66.1 --restart=OnFailure \
		--overrides='{"spec":{"nodeSelector":{"kubernetes.io/hostname":"worker-1"}}}' \
		--command -- /agnhost connect --timeout=20s kubernetes.default.svc.cluster.local:443 >/dev/null 2>&1
	n=$((n + 1)); [ $n -ge 10 ] && break; sleep 15
done
i=0
while :; do
	phase=$(kubectl get pod probe-pod -o jsonpath='{.status.phase}' 2>/dev/null)
	case "$phase" in Succeeded|Failed) break ;; esac
	i=$((i + 1)); [ $i -gt 80 ] && break; sleep 15
done
out pod_phase=$phase pod_restarts=$(kubectl get pod probe-pod -o jsonpath='{.status.containerStatuses[0].restartCount}') pod_node=$(retry kubectl get pod probe-pod -o jsonpath='{.spec.nodeName}') pod_image_pulled=$(kubectl get events --field-selector involvedObject.name=probe-pod -o jsonpath='{.items[*].reason}' | tr ' ' '\n' | grep -c '^Pulling$')
kubectl logs probe-pod 2>&1 | sed 's/^/NBC-LOG pod: /' >/dev/ttyS0
kubectl describe pod probe-pod 2>&1 | tail -15 | sed 's/^/NBC-LOG describe: /' >/dev/ttyS0
if [ "$phase" != Succeeded ]; then
	# The pod reaches the API server through kube-proxy's rules and
	# CoreDNS: what they said last.
	kubectl -n kube-system logs -l k8s-app=kube-proxy --prefix --tail 15 2>&1 | sed 's/^/NBC-LOG /' >/dev/ttyS0
	kubectl -n kube-system logs -l k8s-app=kube-proxy --prefix --tail 15 --previous 2>&1 | sed 's/^/NBC-LOG previous /' >/dev/ttyS0
	kubectl -n kube-system logs -l k8s-app=kube-dns --prefix --tail 10 2>&1 | sed 's/^/NBC-LOG /' >/dev/ttyS0
fi
# The worker reboots once the pod is done; it must come back Ready with
# the same node, without joining again.
boot=$(retry kubectl get node worker-1 -o jsonpath='{.status.nodeInfo.bootID}')
i=0
until [ "$(kubectl get node worker-1 -o jsonpath='{.status.nodeInfo.bootID}' 2>/dev/null)" != "$boot" ] && [ "$(ready worker-1 2>/dev/null)" = True ]; do
	i=$((i + 1)); [ $i -gt 45 ] && break; sleep 20
done
out worker_rebooted=$([ "$(retry kubectl get node worker-1 -o jsonpath='{.status.nodeInfo.bootID}')" != "$boot" ] && echo yes || echo no) worker_ready_after=$(retry ready worker-1)
out done=1
