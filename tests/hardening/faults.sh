# shellcheck shell=bash
# Resource faults: a full or read-only dataDir, missing firewall binaries, a held xtables
# lock.  Each must give a clean CNI error (the right code, a message that names the cause)
# and leave nothing half-written.
#
# Filesystem faults use a tmpfs mounted in a private mount namespace (util-linux `unshare
# --mount`), held open by a sleeping process; plugins run in it through nsenter.  No host
# path is ever remounted.  etcd going away under flanneld is covered by
# tests/flanneld/vxlan.sh:test_flanneld_etcd_outage (the dataplane keeps forwarding, the
# watches recover); it is not repeated here.

# shellcheck source=tests/hardening/common.bash
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

# mnt_ns_start: a process in a private mount namespace ($MNT_PID); in_mnt runs in it.
mnt_ns_start() {
	local i me
	unshare --mount --propagation private sleep 600 &
	MNT_PID=$!
	track_pid "$MNT_PID"
	me=$(readlink /proc/self/ns/mnt)
	for i in $(seq 1 100); do
		[[ $(readlink "/proc/$MNT_PID/ns/mnt" 2>/dev/null) != "$me" ]] && return 0
		sleep 0.02
	done
	fail "unshare --mount did not start"
}
in_mnt() { nsenter -t "$MNT_PID" -m -- "$@"; }

# ncall CMD CONF CID IFNAME NETNS [NAME=VAL...]: cni_call, but the plugin runs in the
# private mount namespace (and the node netns).  Sets OUT, RC, OUTF, ERRF and SECS.
ncall() {
	local cmd=$1 conf=$2 cid=$3 ifn=$4 netns=$5 type s
	shift 5
	type=$(jq -r '.type' <<<"$conf")
	CALL_N=$((CALL_N + 1))
	# BASHPID: a call in a background subshell has the same CALL_N as one in the test's shell
	OUTF=$T/out.n$BASHPID.$CALL_N
	ERRF=$T/err.n$BASHPID.$CALL_N
	s=$EPOCHREALTIME
	nsenter -t "$MNT_PID" -m --net="$NODE_NS" -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		CNI_COMMAND="$cmd" CNI_CONTAINERID="$cid" CNI_NETNS="$netns" CNI_IFNAME="$ifn" \
		CNI_PATH="$IPAM_DIR" "$@" "$MAIN_DIR/$type" <<<"$conf" >"$OUTF" 2>"$ERRF"
	RC=$?
	SECS=$(since_s "$s")
	OUT=$(cat "$OUTF")
	log "--- $cmd $type cid=$cid (mount ns) $* -> rc=$RC in ${SECS}s"
	[[ -n $OUT ]] && log "$OUT"
	[[ -s $ERRF ]] && log "stderr: $(head -c 2000 "$ERRF")"
	return 0
}

# A tmpfs of SIZE at $T/fs in the private mount namespace.
small_fs() {
	mkdir -p "$T/fs"
	in_mnt mount -t tmpfs -o "size=$1,mode=755" weft-test "$T/fs" || fail "mount tmpfs"
}
fill_fs() { in_mnt dd if=/dev/zero of="$T/fs/fill" bs=4k 2>/dev/null; in_mnt sync; }
unfill_fs() { in_mnt rm -f "$T/fs/fill"; }
# Files of a dir inside the mount namespace, one line.
mnt_ls() { in_mnt ls -A "$1" 2>/dev/null | tr '\n' ' ' | sed 's/ $//'; }

# host-local on a full dataDir: code 5 naming ENOSPC; the reservation, the cursor and the
# scratch file are all as before; once there is room again the next ADD works.
test_fault_host_local_full_disk() {
	local pod conf
	mnt_ns_start
	small_fs 64k
	DATA=$T/fs/data
	new_pod pod
	conf=$(hl_conf 1.0.0)
	ncall ADD "$conf" c1 eth0 "$pod"
	assert_rc 0
	fill_fs
	ncall ADD "$conf" c2 eth0 "$pod"
	assert_error_w '5|11' 999 'no space left on device'
	assert_eq "10.88.7.2 last_reserved_ip.0 lock" "$(mnt_ls "$DATA/$NET")" "files after the failed ADD"
	assert_eq 10.88.7.2 "$(in_mnt cat "$DATA/$NET/last_reserved_ip.0")" "cursor"
	# CHECK and DEL of the existing container still work on a full disk
	ncall DEL "$conf" c1 eth0 "$pod"
	assert_rc 0
	assert_eq "last_reserved_ip.0 lock" "$(mnt_ls "$DATA/$NET")" "files after DEL"
	unfill_fs
	ncall ADD "$conf" c2 eth0 "$pod"
	assert_rc 0
	assert_json '.ips[0].address' 10.88.7.3/24
	figure fault_full_disk "host-local: code $(jq -r .code <<<"$(cat "$T/out.n2")"), nothing written"
}

# host-local on a read-only dataDir: ADD, DEL and STATUS fail cleanly (5/11, 50) and change
# nothing; after remounting read-write, DEL and ADD work.
test_fault_host_local_read_only() {
	local pod conf
	mnt_ns_start
	small_fs 1m
	DATA=$T/fs/data
	new_pod pod
	conf=$(hl_conf 1.0.0)
	ncall ADD "$conf" c1 eth0 "$pod"
	assert_rc 0
	in_mnt mount -o remount,ro "$T/fs" || fail "remount ro"
	ncall ADD "$conf" c2 eth0 "$pod"
	assert_error_w '5|11' 999 'read-only file system'
	ncall DEL "$conf" c1 eth0 "$pod"
	if is_weft; then
		assert_error '5|11' 'read-only file system'
	else
		assert_rc 0 # Go 1.1.1 ignores the failed remove: "success", the file stays (below)
	fi
	if is_weft; then # STATUS is CNI 1.1.0
		ncall STATUS "$(hl_conf 1.1.0)" "" "" ""
		assert_error 50 'read-only file system'
	fi
	assert_eq "10.88.7.2 last_reserved_ip.0 lock" "$(mnt_ls "$DATA/$NET")" "files"
	in_mnt mount -o remount,rw "$T/fs" || fail "remount rw"
	ncall DEL "$conf" c1 eth0 "$pod"
	assert_rc 0
	ncall ADD "$conf" c2 eth0 "$pod"
	assert_rc 0
	assert_eq "10.88.7.3 last_reserved_ip.0 lock" "$(mnt_ls "$DATA/$NET")" "files at the end"
}

# flannel's saved delegate config on a full or read-only dataDir: ADD fails with 5/11 before
# the delegate runs (no veth, no address), and no saved or temporary file is left.
test_fault_flannel_saved_file() {
	local pod conf
	fl_setup
	new_pod pod # before the mount namespace, so its netns mount is in it
	mnt_ns_start
	small_fs 64k
	FLDATA=$T/fs/flannel
	NET=$FL_NET
	conf=$(fl_conf 1.0.0)
	ncall ADD "$conf" c1 eth0 "$pod"
	assert_rc 0
	fill_fs
	ncall ADD "$conf" c2 eth0 "$pod"
	assert_error '5|11' 'no space left on device'
	assert_eq "c1" "$(mnt_ls "$FLDATA")" "flannel files after the failed ADD"
	assert_eq 1 "$(ip_files | wc -l)" "reservations (the delegate did not run)"
	assert_eq 1 "$(node_veths | wc -l)" "veths"
	unfill_fs
	in_mnt mount -o remount,ro "$T/fs" || fail "remount ro"
	ncall ADD "$conf" c2 eth0 "$pod"
	assert_error '5|11' 'read-only file system'
	assert_eq "c1" "$(mnt_ls "$FLDATA")" "flannel files after the read-only ADD"
	assert_eq 1 "$(ip_files | wc -l)" "reservations"
	in_mnt mount -o remount,rw "$T/fs" || fail "remount rw"
	ncall DEL "$conf" c2 eth0 "$pod"
	assert_rc 0
	ncall DEL "$conf" c1 eth0 "$pod"
	assert_rc 0
	assert_eq "" "$(mnt_ls "$FLDATA")" "flannel files at the end"
	assert_eq 0 "$(ip_files | wc -l)" "reservations at the end"
}

# iptables / nft missing: ADD fails with a message naming the binary and the variable that
# points at it, and rolls everything back (no veth, no address, no rule).
test_fault_firewall_binary_missing() {
	weft_only "the WEFT_IPTABLES/WEFT_NFT overrides are weft's"
	local pod before res
	new_pod pod
	# the bridge stays after a failed ADD (as in Go): create it first
	must_add "$(bridge_conf 1.0.0)" c0 eth0 "$pod"
	must_del "$(bridge_conf 1.0.0)" c0 eth0 "$pod"
	before=$(snapshot)
	# (with no ipMasqBackend, a host without iptables gets nftables, as in Go)
	cni_add "$(bridge_conf 1.0.0 '.ipMasq = true | .ipMasqBackend = "iptables"')" c1 eth0 "$pod" \
		WEFT_IPTABLES=/nonexistent/iptables WEFT_IPTABLES_RESTORE=/nonexistent/iptables-restore
	assert_error '999|5|11' '/nonexistent/iptables.*WEFT_IPTABLES'
	assert_unchanged "$before" "state after the failed ADD (iptables missing)"
	cni_add "$(bridge_conf 1.0.0 '.ipMasq = true | .ipMasqBackend = "nftables"')" c1 eth0 "$pod" \
		WEFT_NFT=/nonexistent/nft
	assert_error '999|5|11' '/nonexistent/nft.*WEFT_NFT'
	assert_unchanged "$before" "state after the failed ADD (nft missing)"
	# portmap
	must_add "$(bridge_conf 1.0.0)" c2 eth0 "$pod"
	res=$OUT
	before=$(snapshot)
	cni_add "$(with_prev "$(pm_conf 1.0.0 "$HD_MAPS" '.backend = "iptables"')" "$res")" c2 eth0 "$pod" \
		WEFT_IPTABLES=/nonexistent/iptables WEFT_IPTABLES_RESTORE=/nonexistent/iptables-restore
	assert_error '999|5|11' '/nonexistent/iptables'
	assert_unchanged "$before" "state after the failed portmap ADD (iptables missing)"
	cni_add "$(with_prev "$(pm_conf 1.0.0 "$HD_MAPS" '.backend = "nftables"')" "$res")" c2 eth0 "$pod" \
		WEFT_NFT=/nonexistent/nft
	assert_error '999|5|11' '/nonexistent/nft'
	assert_unchanged "$before" "state after the failed portmap ADD (nft missing)"
	# a runtime's short PATH is not "missing": the sbin directories are searched too
	local p3
	new_pod p3
	cni_add "$(bridge_conf 1.0.0 '.ipMasq = true')" c3 eth0 "$p3" PATH=/nonexistent
	assert_rc 0
}

# The xtables lock held by someone else (iptables-legacy; iptables-nft takes no lock): ADD
# waits for the bounded time, then fails naming the lock, and rolls back.  The lock is a
# private file: /run is a tmpfs in a private mount namespace, and the host's
# /run/xtables.lock stays free throughout.
test_fault_xtables_lock_held() {
	weft_only "the WEFT_IPTABLES overrides are weft's (Go waits for the lock without a bound)"
	local pod pod2 pmres conf legacy wait_s pm_wait_s pm_job holder i
	command -v iptables-legacy >/dev/null || skip "iptables-legacy not installed"
	new_pod pod
	new_pod pod2
	must_add "$(bridge_conf 1.0.0)" c2 eth0 "$pod2"
	pmres=$OUT
	mnt_ns_start
	# /var/run/netns is under /run: keep the netns mounts reachable from $T/netns
	mkdir -p "$T/netns"
	in_mnt mount --rbind /run/netns "$T/netns" || fail "bind /run/netns"
	pod=$T/netns/${pod##*/}
	pod2=$T/netns/${pod2##*/}
	in_mnt mount -t tmpfs -o size=1m,mode=755 weft-run /run || fail "tmpfs on /run"
	# nsenter and flock --no-fork exec: the pid we get is the process holding the lock
	nsenter -t "$MNT_PID" -m -- flock --no-fork /run/xtables.lock sleep 120 &
	holder=$!
	track_pid "$holder"
	for i in $(seq 1 50); do in_mnt flock -n /run/xtables.lock true || break; sleep 0.05; done
	in_mnt flock -n /run/xtables.lock true && fail "the private lock is not held"
	flock -n /run/xtables.lock true || fail "the host's xtables lock is held (not private)"
	legacy=(WEFT_IPTABLES=iptables-legacy WEFT_IPTABLES_RESTORE=iptables-legacy-restore
		WEFT_IP6TABLES=ip6tables-legacy WEFT_IP6TABLES_RESTORE=ip6tables-legacy-restore)
	# no explicit backend: a busy iptables must not count as "no iptables" (which would put
	# the rules in nftables instead)
	conf=$(bridge_conf 1.0.0 '.ipMasq = true')
	# portmap at the same time, on a pod attached before the lock was taken
	(
		ncall ADD "$(with_prev "$(pm_conf 1.0.0 "$HD_MAPS")" "$pmres")" \
			c2 eth0 "$pod2" "${legacy[@]}"
		printf '%s\n%s\n' "$SECS" "$OUT" >"$T/pm.lock"
	) &
	pm_job=$!
	ncall ADD "$conf" c1 eth0 "$pod" "${legacy[@]}"
	assert_error '999|5|11' 'xtables lock'
	wait_s=$SECS
	wait "$pm_job"
	OUT=$(tail -n +2 "$T/pm.lock")
	RC=1
	assert_error '999|5|11' 'xtables lock'
	pm_wait_s=$(head -n1 "$T/pm.lock")
	log "portmap ADD with the xtables lock held failed after ${pm_wait_s}s"
	awk -v s="$pm_wait_s" 'BEGIN { exit !(s >= 9.5 && s <= 15) }' || fail "portmap waited ${pm_wait_s}s, not ~10s"
	in_node iptables-legacy-save -t nat | grep -q "$(dn_chain "$NET" c2)" && fail "portmap rules left"
	log "ADD with the xtables lock held failed after ${wait_s}s"
	# bounded: one 10 s lock wait (the failed setup rolls itself back, so no teardown
	# waits again), never forever
	awk -v s="$wait_s" 'BEGIN { exit !(s >= 9.5 && s <= 15) }' || fail "waited ${wait_s}s, not ~10s"
	assert_eq "10.88.7.2" "$(ip_files)" "reservations after the failed ADD (only c2's)"
	assert_eq 1 "$(node_veths | wc -l)" "veths after the failed ADD (only c2's)"
	in_node iptables-legacy-save -t nat | grep -q 'CNI-' && fail "legacy rules left"
	figure fault_xtables_lock_wait_s "bridge=$wait_s portmap=$pm_wait_s"
	# the same ADD once the lock is free
	kill "$holder"
	wait "$holder" 2>/dev/null
	for i in $(seq 1 50); do in_mnt flock -n /run/xtables.lock true && break; sleep 0.1; done
	ncall ADD "$conf" c1 eth0 "$pod" "${legacy[@]}"
	assert_rc 0
	in_node iptables-legacy-save -t nat | grep -q "$(chain_name "$NET" c1)" || fail "no legacy ipMasq chain"
	ncall DEL "$conf" c1 eth0 "$pod" "${legacy[@]}"
	assert_rc 0
}
