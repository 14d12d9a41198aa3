#!/bin/sh
# The Cluster API test's probe, on every node: one script, since both
# workers boot from one user data. It reports "NBK NODE key=value" lines
# on the serial console, and the test judges them. On the control plane
# it then waits for the whole cluster, runs a pod on each worker, and
# ends with done=1.
me=$(hostname)
out() { echo "NBK $me $*" >/dev/ttyS0; }
field() { firstboot status --json | sed -n "s/^  \"$1\": \"\(.*\)\",\$/\1/p"; }
out firstboot=$(field result) role=$(field role) node=$(field nodeName)
out machine_id=$(cat /etc/machine-id) ssh_host_key=$(cut -d' ' -f2 /etc/ssh/ssh_host_ed25519_key.pub | sha256sum | cut -c1-16)
out success_file=$([ -f /run/cluster-api/bootstrap-success.complete ] && echo yes || echo no) \
	pre=$([ -f /run/capi-test-pre ] && echo yes || echo no) post=$([ -f /run/capi-test-post ] && echo yes || echo no)
out kubeadm_yml=$([ -e /etc/kubeadm.yml ] && echo in-etc || echo moved) kubeadm_unit=$(systemctl is-enabled kubeadm.service 2>/dev/null)
out ip=$(ip -4 -o addr show scope global | awk '{print $4}' | head -1)
if [ "$(field result)" != success ]; then
	{ firstboot status; journalctl -b -u firstboot.service -o cat | tail -40; } 2>&1 | sed "s/^/NBK-LOG $me /" >/dev/ttyS0
	[ "$(field role)" = init ] && out done=1
	exit 1
fi
[ "$(field role)" = init ] || exit 0

export KUBECONFIG=/etc/kubernetes/admin.conf
. /etc/nodebake-test/lib.sh
# Three nodes, all Ready.
i=0
until [ "$(kubectl get nodes --no-headers 2>/dev/null | wc -l)" -ge 3 ]; do
	i=$((i + 1)); [ $i -gt 160 ] && break; sleep 15
done
waitfor 1800 --for=condition=Ready nodes --all
out nodes=$(retry kubectl get nodes -o jsonpath='{range .items[*]}{.metadata.name}:{.status.conditions[?(@.type=="Ready")].status},{end}')
kubectl get nodes -o wide 2>&1 | sed "s/^/NBK-LOG $me /" >/dev/ttyS0
# A pod on each worker, from a baked image: it reaches the API server by
# its service's DNS name, through CoreDNS and kube-proxy.
waitfor 1200 -n kube-system --for=condition=Available deployment/coredns
workers=$(retry kubectl get nodes -l '!node-role.kubernetes.io/control-plane' -o jsonpath='{.items[*].metadata.name}')
for w in $workers; do
	kubectl run "probe-$w" --image=registry.k8s.io/e2e-test-images/agnhost:2.66.1 --restart=OnFailure \
		--overrides="{\"spec\":{\"nodeSelector\":{\"kubernetes.io/hostname\":\"$w\"}}}" \
		--command -- /agnhost connect --timeout=20s kubernetes.default.svc.cluster.local:443 >/dev/null 2>&1
done
for w in $workers; do
	i=0
	until [ "$(kubectl get pod "probe-$w" -o jsonpath='{.status.phase}' 2>/dev/null)" = Succeeded ]; do
		i=$((i + 1)); [ $i -gt 80 ] && break; sleep 15
	done
	out "pod.$w=$(kubectl get pod "probe-$w" -o jsonpath='{.status.phase}' 2>/dev/null)" "pod_node.$w=$(kubectl get pod "probe-$w" -o jsonpath='{.spec.nodeName}' 2>/dev/null)"
done
kubectl get pods -A -o wide 2>&1 | sed "s/^/NBK-LOG $me /" >/dev/ttyS0
out done=1
