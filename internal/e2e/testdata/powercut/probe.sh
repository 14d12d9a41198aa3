#!/bin/sh
# The power-cut test's probe, on both nodes after firstboot: the agent's
# record as "NBP key=value" lines on the serial console, and on the
# control plane the cluster once both nodes are Ready. The test judges
# them.
out() { echo "NBP $*" >/dev/ttyS0; }
export KUBECONFIG=/etc/kubernetes/admin.conf
st=$(firstboot status)
echo "$st" | sed 's/^/NBP-LOG /' >/dev/ttyS0
field() { echo "$st" | sed -n "s/^$1: *\([^ ]*\).*/\1/p"; }
out firstboot=$(field result) runs=$(field runs) kubeadm_runs=$(field kubeadm) \
	init_finished=$(echo "$st" | grep -q '^init: .*; finished ' && echo yes || echo no)
[ -f /run/cluster-api/bootstrap-success.complete ] && out marker=yes
[ "$(hostname)" = cp-1 ] || { out done=1; exit 0; }
. /etc/nodebake-test/lib.sh
waitfor 1800 --for=create node/worker-1 && waitfor 1800 --for=condition=Ready node/cp-1 node/worker-1
for n in cp-1 worker-1; do
	out ready.$n=$(retry kubectl get node $n -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}') \
		ready_at.$n=$(retry kubectl get node $n -o jsonpath='{.status.conditions[?(@.type=="Ready")].lastTransitionTime}')
done
waitfor 1200 -n kube-system --for=condition=Available deployment/coredns
out coredns_available=$(retry kubectl -n kube-system get deployment coredns -o jsonpath='{.status.conditions[?(@.type=="Available")].status}') \
	kubeadm_config=$(retry kubectl -n kube-system get configmap kubeadm-config -o name)
retry kubectl get pods -A -o wide | sed 's/^/NBP-LOG /' >/dev/ttyS0
out done=1
