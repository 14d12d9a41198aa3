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
export KUBECONFIG=/etc/kubernetes/kubelet.conf
if [ "$boot" = 1 ]; then
	i=0
	until [ "$(kubectl get pod probe-pod -o jsonpath='{.status.phase}' 2>/dev/null)" = Succeeded ] ||
		[ "$(kubectl get pod probe-pod -o jsonpath='{.status.phase}' 2>/dev/null)" = Failed ]; do
		i=$((i + 1)); [ $i -gt 150 ] && break; sleep 10
	done
	out action=reboot
	systemctl reboot
else
	out kubelet=$(systemctl is-active kubelet)
fi
