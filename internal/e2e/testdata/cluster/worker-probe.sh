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
	# The control plane's test pod ran here once its container exited;
	# asked of the local containerd, which costs no TLS handshake.
	i=0
	until [ -n "$(crictl ps -a --name probe-pod --state exited -q 2>/dev/null)" ]; do
		i=$((i + 1)); [ $i -gt 90 ] && break; sleep 20
	done
	# The kubelet reports the pod's end, and the control plane reads the
	# pod's log, before the node goes away.
	sleep 90
	out action=reboot
	systemctl reboot
else
	out kubelet=$(systemctl is-active kubelet)
fi
