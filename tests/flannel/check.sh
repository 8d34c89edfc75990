# shellcheck shell=bash
# CHECK (Go's flannel: a no-op): the delegate's CHECK runs with the saved config plus the
# runtime's prevResult, and flannel itself notices a subnet that changed under the pod.

# shellcheck source=tests/flannel/common.bash
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

test_check_follows_the_pod() {
	weft_only "Go bridge 1.1.1's CHECK fails on flannel's gateway-less routes"
	local pod conf result
	fl_setup
	conf=$(fl_conf 1.0.0)
	new_pod pod
	must_add "$conf" c1 eth0 "$pod"
	result=$OUT
	must_check "$(with_prev "$conf" "$result")" c1 eth0 "$pod"
	# CHECK works from the saved config while flanneld is down
	mv "$SUBNET_ENV" "$SUBNET_ENV.off"
	must_check "$(with_prev "$conf" "$result")" c1 eth0 "$pod"
	mv "$SUBNET_ENV.off" "$SUBNET_ENV"
	# the pod loses its address: the delegate's CHECK fails, and flannel says so
	in_ns "$pod" ip addr flush dev eth0
	cni_check "$(with_prev "$conf" "$result")" c1 eth0 "$pod"
	assert_error '.*' '^failed to delegate check: '
	must_del "$conf" c1 eth0 "$pod"
}

# flanneld got another lease (subnet.env changed): pods in the old subnet are cut off.
test_check_subnet_changed() {
	local pod conf result
	fl_setup
	conf=$(fl_conf 1.0.0)
	new_pod pod
	must_add "$conf" c1 eth0 "$pod"
	result=$OUT
	write_subnet_env "$(default_env | sed 's#10.244.7.1/24#10.244.9.1/24#')"
	cni_check "$(with_prev "$conf" "$result")" c1 eth0 "$pod"
	assert_error 999 "the node's flannel subnet changed: the container was attached in 10\.244\.7\.0/24, $SUBNET_ENV now has 10\.244\.9\.0/24"
	must_del "$conf" c1 eth0 "$pod"
}

test_check_unknown_container() {
	local pod conf
	fl_setup
	conf=$(fl_conf 1.0.0)
	new_pod pod
	cni_check "$(with_prev "$conf" '{"cniVersion":"1.0.0"}')" nope eth0 "$pod"
	assert_error 3 "no saved delegate config $FLDATA/nope: container nope was not added by flannel"
}
