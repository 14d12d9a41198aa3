#!/bin/sh
# The control-plane test's probe, on every control plane. Every node
# reports what it is (report_node, "NBK NODE" lines). On the first it then
# waits for the others (/etc/nodebake-test/peers: "NAME IP" lines, this
# node's first) and judges the control plane, as "NBC key=value" lines:
# every node Ready with the control-plane role, every etcd member a
# voter, and every API server answering /readyz; done=1 ends it.
. /etc/nodebake-test/lib.sh
cluster() { echo "NBC $*" >/dev/ttyS0; }
if ! report_node; then
	[ "$(field role)" = init ] && cluster done=1
	exit 1
fi
[ "$(field role)" = init ] || exit 0

export KUBECONFIG=/etc/kubernetes/admin.conf
cluster firstboot=success
log() { sed 's/^/NBC-LOG /' >/dev/ttyS0; }
ready() { kubectl get node "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}'; }
names=$(awk '{print $1}' /etc/nodebake-test/peers)
for n in $names; do waitfor 3600 --for=create node/$n; done
waitfor 1800 --for=condition=Ready nodes --all
for n in $names; do
	cluster ready.$n=$(retry ready $n) ready_at.$n=$(retry kubectl get node $n -o jsonpath='{.status.conditions[?(@.type=="Ready")].lastTransitionTime}')
done
cluster control_planes=$(retry kubectl get nodes -l node-role.kubernetes.io/control-plane -o name | wc -l)
retry kubectl get nodes -o wide | log
# etcd's own view, from the member on this node, through etcd's JSON
# gateway (the kit's etcd image, like a distroless one, has no etcdctl):
# every member started (named) and a voter (no "isLearner":true).
echo '{}' >/tmp/nbc-empty.json
pki=/etc/kubernetes/pki/etcd
members=$(retry kubectl --kubeconfig /dev/null -s https://127.0.0.1:2379 --certificate-authority $pki/ca.crt \
	--client-certificate $pki/healthcheck-client.crt --client-key $pki/healthcheck-client.key \
	create --raw /v3/cluster/member/list -f /tmp/nbc-empty.json)
echo "$members" | grep -o '{"ID":[^}]*}' | log
cluster etcd_members=$(echo "$members" | grep -o '{"ID":[^}]*}' | grep -c .) \
	etcd_voters=$(echo "$members" | grep -o '{"ID":[^}]*}' | grep '"name":"[^"]' | grep -vc '"isLearner":true')
# Each control plane's API server, by its own address.
for ip in $(awk '{print $2}' /etc/nodebake-test/peers); do
	cluster "readyz.$ip=$(retry kubectl --server "https://$ip:6443" get --raw /readyz)"
done
retry kubectl -n kube-system get pods -o wide | log
cluster done=1
