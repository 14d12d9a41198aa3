#!/bin/sh
# The two-node cluster test's probe on the worker: reports on the serial
# console, and reboots once after the control plane's test pod ran here.
out() { echo "NBW boot=$boot $*" >/dev/ttyS0; }
mkdir -p /var/lib/nodebake-test
boot=$(( $(cat /var/lib/nodebake-test/boots 2>/dev/null || echo 0) + 1 ))
echo $boot >/var/lib/nodebake-test/boots
sync
out firstboot=$(firstboot status --json | sed -n 's/^  "result": "\(.*\)",$/\1/p') runs=$(firstboot status --json | sed -n 's/^  "runs": \([0-9]*\),$/\1/p')
out journal_already=$(journalctl -b -u firstboot.service -o cat | grep -q 'already configured' && echo yes || echo no)
if [ "$boot" = 1 ]; then
	# The control plane's test pod is restarted until it succeeds; the
	# node's own credentials may read a pod bound to it.
	i=0
	until [ "$(kubectl --kubeconfig /etc/kubernetes/kubelet.conf get pod probe-pod -o jsonpath='{.status.phase}' 2>/dev/null)" = Succeeded ]; do
		i=$((i + 1)); [ $i -gt 60 ] && break; sleep 30
	done
	# The kubelet reports the pod's end, and the control plane reads the
	# pod's log, before the node goes away.
	sleep 90
	out action=reboot
	systemctl reboot
else
	out kubelet=$(systemctl is-active kubelet)
fi
