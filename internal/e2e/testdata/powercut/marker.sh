#!/bin/sh
# The power-cut test's marker: says on the serial console when etcd has
# data, the moment the test cuts the power in kubeadm init.
until [ -d /var/lib/etcd/member ]; do sleep 0.5; done
echo "NBP-MARK etcd" >/dev/ttyS0
