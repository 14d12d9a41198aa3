#!/bin/sh
# The slow-init test's probe: after firstboot, what its record says and
# whether the init kubeadm could not finish in time is complete, as
# "NBS key=value" lines on the serial console; the test judges them.
out() { echo "NBS $*" >/dev/ttyS0; }
export KUBECONFIG=/etc/kubernetes/admin.conf
json=$(firstboot status --json)
out firstboot=$(echo "$json" | sed -n 's/^  "result": "\(.*\)",$/\1/p') runs=$(echo "$json" | sed -n 's/^  "runs": \(.*\),$/\1/p')
firstboot status 2>&1 | sed 's/^/NBS-LOG /' >/dev/ttyS0
# The phases the agent ran itself, from status's "init:" line, or "none".
phases=$(firstboot status | sed -n 's/^init: .*the agent ran: \(.*\); \(finish[a-z]*\).*$/\1,\2/p' | sed 's/, /,/g; s/ /_/g')
out finished_phases=${phases:-none}
journalctl -b -u firstboot.service -o cat 2>&1 | tail -30 | sed 's/^/NBS-LOG journal: /' >/dev/ttyS0
. /etc/nodebake-test/lib.sh
# What each phase after wait-control-plane leaves in the cluster.
out kubeadm_config=$(retry kubectl -n kube-system get configmap kubeadm-config -o name) \
	control_plane=$(retry kubectl get nodes -l node-role.kubernetes.io/control-plane -o name) \
	bootstrap_token=$(retry kubectl -n kube-system get secrets --field-selector type=bootstrap.kubernetes.io/token -o name | wc -l) \
	kube_proxy=$(retry kubectl -n kube-system get daemonset kube-proxy -o name)
waitfor 1800 --for=condition=Ready node/cp-1
waitfor 1200 -n kube-system --for=condition=Available deployment/coredns
out ready=$(retry kubectl get node cp-1 -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}') \
	ready_at=$(retry kubectl get node cp-1 -o jsonpath='{.status.conditions[?(@.type=="Ready")].lastTransitionTime}') \
	coredns_available=$(retry kubectl -n kube-system get deployment coredns -o jsonpath='{.status.conditions[?(@.type=="Available")].status}')
retry kubectl get pods -A -o wide | sed 's/^/NBS-LOG /' >/dev/ttyS0
out done=1
