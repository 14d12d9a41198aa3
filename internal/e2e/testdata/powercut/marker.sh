#!/bin/sh
# The power-cut tests' marker, on every node from the apply on. It says on
# the serial console when a node reaches the moment its power is to be
# cut, as "NBP-MARK WHAT", for the test on the host to cut it then:
#   etcd: kubeadm init has started etcd, which holds data (init goes on
#         for minutes from there);
#   join: kubeadm join is under way (its kubelet bootstrapping, or 3 s
#         in); kubeadm is frozen (SIGSTOP) first, so that however fast the
#         host, the cut lands inside the join.
# Each node reaches one of them, once: the marker ends there, and leaves
# a note on disk so that it never marks, nor freezes kubeadm, again. Only
# the note is synced (the power goes right after the mark): what kubeadm
# wrote stays as unflushed as a real power cut finds it.
done=/var/lib/nodebake-test/marked
[ -e $done ] && exit 0
mark() {
	mkdir -p "$(dirname $done)"
	echo "$1" >$done
	sync "$done" "$(dirname $done)"
	echo "NBP-MARK $1" >/dev/ttyS0
}
since=""
while :; do
	if [ -d /var/lib/etcd/member ]; then
		mark etcd
		exit 0
	fi
	if pids=$(pgrep -f '^/usr/bin/kubeadm join|^kubeadm join'); then
		now=$(date +%s)
		since=${since:-$now}
		if [ -e /etc/kubernetes/bootstrap-kubelet.conf ] || [ -e /etc/kubernetes/kubelet.conf ] || [ $((now - since)) -ge 3 ]; then
			kill -STOP $pids
			mark join
			exit 0
		fi
	fi
	sleep 0.3
done
