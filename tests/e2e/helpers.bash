# shellcheck shell=bash
# Shared helpers of the end-to-end tests (tests/e2e/*.sh): real runtimes
# (cnitool over libcni, containerd's ctr and CRI plugin, podman) driving the
# weft plugins.  Sourced by every tests/e2e/*.sh file; defines functions only.
#
# Isolation.  A runtime runs "in the node": inside the test's node netns
# ($NODE, so bridges, veths, sysctls and iptables/nft rules land there) and
# inside a private mount namespace kept alive by a holder process ($_E2E_HOLDER, a
# `sleep infinity` named weft-e2e-mntns.<test pid>).  Not by a bind of its nsfs file: in a
# pivot_root'ed root (scripts/fresh-root, kernel 6.18) that bind fails now and then with EINVAL.
# In that mount namespace:
#   /opt (so /opt/cni/bin)   tmpfs; /opt/cni/bin is a bind of $CNI_BIN, which
#                            holds copies of OUR binaries only
#   /etc/cni                 tmpfs; /etc/cni/net.d is a bind of $CNI_CONF
#   /usr/lib/cni             tmpfs: hides Debian's Go plugins, so a plugin weft
#                            lacks fails loudly instead of falling back to Go
#                            (ctr searches /opt/cni/bin:/usr/lib/cni)
#   /var/lib                 tmpfs; /var/lib/cni is a bind of $VARLIB_CNI
#                            (libcni's result cache, host-local's and flannel's
#                            default dataDirs)
#   /run                     tmpfs (/run is on the root disk here); /run/netns
#                            (runtime-made netns), /run/flannel (a bind of
#                            $RUN_FLANNEL), /run/containerd (shim sockets)...
#   /dev/shm, /var/tmp       tmpfs (podman's SHM locks, its temp files)
#   $GO_CNI                  a bind of the real /usr/lib/cni (visible only in
#                            the private namespace: in_env cp ...), to prepare a
#                            Go-made state in the mixed tests only
# Nothing of the host's is written.  When the test ends, e2e_teardown kills
# every process left in the mount namespace or in the test's cgroups, removes
# those cgroups and unmounts the namespace, which frees the runtime-made netns
# (bind mounts in it) and the container mounts.

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_REPO=$(cd "$E2E_DIR/../.." && pwd)
# Plugins weft ships, and whatever a conflist of these tests may name.
E2E_PLUGINS=(bridge host-local portmap flannel loopback)
E2E_IMAGE=docker.io/library/weft-busybox:e2e
# The stock flannel conflist (kube-flannel.yml's cni-conf.json; libcni reads
# it as-is, so host-local's state goes to /var/lib/cni/networks/cbr0 and
# flannel's to /var/lib/cni/flannel: both private here).
FLANNEL_CONFLIST='{
  "name": "cbr0",
  "cniVersion": "0.3.1",
  "plugins": [
    {
      "type": "flannel",
      "delegate": {
        "hairpinMode": true,
        "isDefaultGateway": true
      }
    },
    {
      "type": "portmap",
      "capabilities": {
        "portMappings": true
      }
    }
  ]
}'
# subnet.env as flanneld writes it for a node leased 10.244.7.0/24.
FLANNEL_SUBNET_ENV='FLANNEL_NETWORK=10.244.0.0/16
FLANNEL_SUBNET=10.244.7.1/24
FLANNEL_MTU=1450
FLANNEL_IPMASQ=true
'

# bridge_portmap_conflist NAME [JQ]: the usual runtime network: bridge
# (gateway, default route, ipMasq, hairpin) + host-local in 10.88.7.0/24 with
# the default dataDir, + portmap.
bridge_portmap_conflist() {
	jq -n --arg name "$1" '{cniVersion: "1.0.0", name: $name, plugins: [
		{type: "bridge", bridge: "cni0", isGateway: true, isDefaultGateway: true,
		 ipMasq: true, hairpinMode: true,
		 ipam: {type: "host-local", ranges: [[{subnet: "10.88.7.0/24"}]]}},
		{type: "portmap", capabilities: {portMappings: true}}]}' | jq "${2:-.}"
}
# Address of the node on its "uplink" (a veth to the $CLIENT netns) and of
# the client: traffic to a host port comes in from there (PREROUTING).
NODE_IP=192.168.77.1
CLIENT_IP=192.168.77.2

_E2E_UP=0
_E2E_TEARDOWN=()

# e2e_env_up: private mount namespace (see the top), copies of the plugin
# binaries under test in $CNI_BIN, an EXIT hook that tears everything down.
# Sets CNI_BIN, CNI_CONF, VARLIB_CNI, RUN_FLANNEL, GO_CNI, CGROUP_PARENT
# (the cgroup every runtime is told to put its containers under).
e2e_env_up() {
	CNI_BIN=$T/cni/bin
	CNI_CONF=$T/cni/net.d
	VARLIB_CNI=$T/varlib-cni
	RUN_FLANNEL=$T/run-flannel
	GO_CNI=$T/go-cni
	CGROUP_PARENT=$NS_PREFIX$$e2e
	mkdir -p "$CNI_BIN" "$CNI_CONF" "$VARLIB_CNI" "$RUN_FLANNEL" "$GO_CNI" ||
		fail "mkdir in $T"
	_e2e_sweep_stale
	# Copies of the plugin set under test ($PLUGIN_DIR: weft's build, or Go's
	# with --plugins go), so a rebuild during the test cannot swap them.
	# weft's as installed (weft plus a symlink per plugin, so delegation
	# between them is in-process), Go's one file per plugin.
	local b
	if is_weft && [[ -x $PLUGIN_DIR/weft ]]; then
		cp "$PLUGIN_DIR/weft" "$CNI_BIN/weft" && "$CNI_BIN/weft" link "$CNI_BIN" "${E2E_PLUGINS[@]}" ||
			fail "cannot lay out weft in $CNI_BIN"
	else
		for b in "${E2E_PLUGINS[@]}"; do
			[[ -x $PLUGIN_DIR/$b ]] && cp "$PLUGIN_DIR/$b" "$CNI_BIN/$b"
		done
	fi
	# The hook runs before lib.sh's _cleanup (which deletes the netns and $T).
	trap '_e2e_rc=$?; e2e_teardown; (exit $_e2e_rc); _cleanup' EXIT
	_E2E_UP=1
	rm -f "$T/mntns.ready"
	nsenter --net="$NODE_NS" unshare --mount --propagation private \
		bash -euc '
		GO_CNI=$1 CNI_BIN=$2 CNI_CONF=$3 VARLIB_CNI=$4 RUN_FLANNEL=$5
		# Mount points must exist; never create one on the host.
		if [ -d /usr/lib/cni ]; then
			mount --bind /usr/lib/cni "$GO_CNI"
			mount -t tmpfs -o mode=0755 weft-e2e /usr/lib/cni
		fi
		mount -t tmpfs -o mode=0755 weft-e2e /opt
		mkdir -p /opt/cni/bin
		mount --bind "$CNI_BIN" /opt/cni/bin
		[ -d /etc/cni ] || { echo "/etc/cni does not exist (podman creates it)" >&2; exit 1; }
		mount -t tmpfs -o mode=0755 weft-e2e /etc/cni
		mkdir -p /etc/cni/net.d
		mount --bind "$CNI_CONF" /etc/cni/net.d
		mount -t tmpfs -o mode=0755 weft-e2e /var/lib
		mkdir -p /var/lib/cni
		mount --bind "$VARLIB_CNI" /var/lib/cni
		mount -t tmpfs -o mode=0755 weft-e2e /run
		mkdir -p /run/netns /run/flannel /run/lock
		mount --bind "$RUN_FLANNEL" /run/flannel
		mount -t tmpfs -o mode=1777 weft-e2e /dev/shm
		mount -t tmpfs -o mode=1777 weft-e2e /var/tmp
		touch "$6"
		exec -a "weft-e2e-mntns.$7" sleep infinity
		' _ "$GO_CNI" "$CNI_BIN" "$CNI_CONF" "$VARLIB_CNI" "$RUN_FLANNEL" "$T/mntns.ready" "$$" \
		</dev/null >/dev/null 2>"$T/mntns.err" &
	_E2E_HOLDER=$!
	local i
	for ((i = 0; i < 100; i++)); do
		[[ -e $T/mntns.ready ]] && break
		kill -0 "$_E2E_HOLDER" 2>/dev/null || fail "cannot set up the private mount namespace: $(cat "$T/mntns.err")"
		sleep 0.05
	done
	[[ -e $T/mntns.ready ]] || fail "the private mount namespace was not ready after 5 s"
	# Held open by this shell until the teardown ends: the namespace, and so its inode number,
	# cannot be freed and handed to another test's (or a container's) new namespace while the
	# teardown still kills "the processes in our namespace" by that number.
	exec {_E2E_MNTNS_FD}<"/proc/$_E2E_HOLDER/ns/mnt" || fail "no mount namespace of $_E2E_HOLDER"
	_E2E_MNTNS=$(stat -L -c %i "/proc/$$/fd/$_E2E_MNTNS_FD") || fail "stat of the mount namespace"
	# Prove the isolation before any runtime runs.
	[[ -z $(in_env ls -A /usr/lib/cni 2>/dev/null) ]] || fail "/usr/lib/cni is not hidden in the private namespace"
	# The topmost mount (findmnt lists every mount stacked on a path, and /run already is a tmpfs
	# on a systemd machine) must be ours.
	[[ $(in_env findmnt -n -o SOURCE,FSTYPE /opt | tail -n1) == "weft-e2e tmpfs" &&
		$(in_env findmnt -n -o SOURCE,FSTYPE /run | tail -n1) == "weft-e2e tmpfs" ]] ||
		fail "the private mount namespace lacks its tmpfs mounts"
}

# need_tools CMD:PACKAGE...: a runtime that is not installed FAILS the test,
# loudly, naming the Debian package (an e2e test never skips).
need_tools() {
	local t
	for t in "$@"; do
		command -v "${t%%:*}" >/dev/null ||
			fail "${t%%:*} is not installed: apt-get install ${t#*:} (see scripts/install-deps.sh)"
	done
}

# Runs a command in the node: the private mount namespace and the node netns.
in_env() {
	nsenter --mount="/proc/$$/fd/$_E2E_MNTNS_FD" --net="$NODE_NS" -- "$@"
}

# need_plugins NAME...: the plugin binaries a test needs.  Under weft a
# missing one FAILS the test (an e2e test never skips), naming the cargo
# package to build.  Under --plugins go the test is skipped instead when Go
# has no such plugin (Debian ships no flannel).
need_plugins() {
	local p missing=()
	for p in "$@"; do
		[[ -x $CNI_BIN/$p ]] || missing+=("$p")
	done
	[[ ${#missing[@]} == 0 ]] && return 0
	is_weft || skip "no Go plugin ${missing[*]} in $PLUGIN_DIR"
	fail "weft plugin(s) not built: ${missing[*]} (scripts/build); not in $WEFT_BIN"
}

# on_teardown CMD...: run CMD (a string, eval'ed) at teardown, last first.
on_teardown() { _E2E_TEARDOWN=("$1" "${_E2E_TEARDOWN[@]}"); }

# pids of processes in the private mount namespace
_mntns_pids() { [[ -z ${_E2E_MNTNS:-} ]] || _pids_in_mntns "$_E2E_MNTNS"; }

# pids of processes in the mount namespace whose inode number is INO
_pids_in_mntns() { # INO
	local p
	for p in /proc/[0-9]*; do
		[[ $(stat -L -c %i "$p/ns/mnt" 2>/dev/null) == "$1" ]] && echo "${p#/proc/}"
	done
}

# cgroup dirs the runtimes made for this test (cgroup v1 hierarchies and v2)
_e2e_cgroups() {
	local d
	for d in /sys/fs/cgroup/*/"$CGROUP_PARENT"* /sys/fs/cgroup/"$CGROUP_PARENT"* \
		/sys/fs/cgroup/*/"$NS_PREFIX$$"ns* /sys/fs/cgroup/"$NS_PREFIX$$"ns*; do
		[[ -d $d ]] && echo "$d"
	done
}

_cgroup_pids() {
	local d
	for d in $(_e2e_cgroups); do
		find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null
	done | sort -u
}

e2e_teardown() {
	[[ $_E2E_UP == 1 ]] || return 0
	local c p i
	for c in "${_E2E_TEARDOWN[@]}"; do
		eval "$c" >/dev/null 2>&1
	done
	# Whatever the runtimes left running: shims, conmon, container
	# processes.  All were started by this test (they live in its mount
	# namespace or its cgroups).
	for i in 1 2 3 4 5 6 7 8 9 10; do
		p=$( (_mntns_pids; _cgroup_pids) | sort -u)
		[[ -z $p ]] && break
		# shellcheck disable=SC2086
		kill -9 $p 2>/dev/null
		sleep 0.1
	done
	# Depth first: a cgroup can only be removed once its children are gone.
	for c in $(_e2e_cgroups); do
		find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
	[[ -n ${_E2E_MNTNS_FD:-} ]] && exec {_E2E_MNTNS_FD}<&-
	_E2E_UP=0
}

# What an e2e test killed with SIGKILL (no teardown) left behind: its
# mount namespace (its holder process, weft-e2e-mntns.<pid>), the processes in it,
# its temp dir and its cgroups.  Only names of this suite whose test pid is
# gone.
_e2e_sweep_stale() {
	local pid ino d holder
	for holder in $(pgrep -f '^weft-e2e-mntns\.[0-9]+ infinity$'); do
		pid=$(tr '\0' ' ' <"/proc/$holder/cmdline" 2>/dev/null | sed -n 's/^weft-e2e-mntns\.\([0-9]*\) .*/\1/p')
		[[ -n $pid ]] || continue
		kill -0 "$pid" 2>/dev/null && continue
		ino=$(stat -L -c %i "/proc/$holder/ns/mnt" 2>/dev/null) || continue
		_pids_in_mntns "$ino" | xargs -r kill -9 2>/dev/null
	done
	# Its temp dir, once nothing is mounted under it any more.
	for d in "${TMPDIR:-/tmp}"/wtst.[0-9]*.*; do
		[[ -d $d && ${d##*/} =~ ^wtst\.([0-9]+)\. ]] || continue
		kill -0 "${BASH_REMATCH[1]}" 2>/dev/null && continue
		findmnt -rn -o TARGET | grep -q "^$d" || rm -rf "$d"
	done
	for d in /sys/fs/cgroup/*/wtst[0-9]*e2e /sys/fs/cgroup/*/wtst[0-9]*ns; do
		[[ -d $d && ${d##*/} =~ ^wtst([0-9]+)(e2e|ns)$ ]] || continue
		kill -0 "${BASH_REMATCH[1]}" 2>/dev/null && continue
		find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null
		find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
}

# ------------------------------------------------------------- test tools
# env_pod VAR: a pod netns made by the test inside the private mount
# namespace (so a runtime running there can open it), as cnitool's users do:
# VAR=/var/run/netns/e2epod<k>.
_ENV_POD_N=0
env_pod() {
	_ENV_POD_N=$((_ENV_POD_N + 1))
	local name=e2epod$_ENV_POD_N
	in_env ip netns add "$name" || fail "ip netns add $name (private)"
	on_teardown "in_env ip netns del $name"
	in_env ip netns exec "$name" ip link set lo up
	printf -v "$1" '%s' "/var/run/netns/$name"
}

# in_netns NETNS CMD...: CMD in a netns given by path as the runtime sees it
# (a test-made /var/run/netns/wtst..., a private /var/run/netns/e2epod<k>,
# or a runtime's /var/run/netns/cni-..., /run/netns/netns-..., /proc/PID/ns/net).
in_netns() {
	local ns=$1
	shift
	if [[ ${ns##*/} == "$NS_PREFIX"* ]]; then
		in_ns "$ns" "$@"
	else
		in_env nsenter --net="$ns" -- "$@"
	fi
}

# serve NETNS DIR: busybox httpd on port 8080 in NETNS (a pod made by the
# test), serving DIR.  The pid goes to the teardown.
serve() {
	need_tools busybox:busybox-static
	in_netns "$1" busybox httpd -f -p 8080 -h "$2" &
	track_pid $!
	disown $!
}

# ctd_up [cri]: containerd in the node (private root, state, sockets, opt
# dir), with its CRI plugin when asked (bin_dir/conf_dir = $CNI_BIN/$CNI_CONF,
# restrict_oom_score_adj: root here lacks CAP_SYS_RESOURCE).  Sets CTD (its
# dir), CTR (the ctr command for namespace $CTR_NS) and CRI (the CRI client).
# A containerd that does not come up FAILS the test.
ctd_up() {
	local disabled='"io.containerd.grpc.v1.cri", ' i
	[[ ${1:-} == cri ]] && disabled=
	need_tools containerd:containerd ctr:containerd runc:runc containerd-shim-runc-v2:containerd
	[[ ${1:-} == cri ]] && { /usr/bin/python3 -c 'import grpc' 2>/dev/null ||
		fail "python3-grpcio is not installed (apt-get install python3-grpcio): the CRI client needs it"; }
	CTD=$T/ctd
	CTR_NS=$NS_PREFIX$$ns
	mkdir -p "$CTD"
	cat >"$CTD/config.toml" <<-EOF
		version = 2
		root = "$CTD/root"
		state = "$CTD/state"
		disabled_plugins = [$disabled"io.containerd.snapshotter.v1.devmapper",
		  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
		  "io.containerd.snapshotter.v1.aufs"]
		[grpc]
		  address = "$CTD/sock"
		[ttrpc]
		  address = "$CTD/sock.ttrpc"
		[plugins."io.containerd.internal.v1.opt"]
		  path = "$CTD/opt"
		[plugins."io.containerd.grpc.v1.cri"]
		  sandbox_image = "$E2E_IMAGE"
		  restrict_oom_score_adj = true
		  [plugins."io.containerd.grpc.v1.cri".cni]
		    bin_dir = "$CNI_BIN"
		    conf_dir = "$CNI_CONF"
	EOF
	in_env containerd --config "$CTD/config.toml" >"$CTD/log" 2>&1 &
	CTD_PID=$!
	track_pid "$CTD_PID"
	CTR=(in_env ctr --address "$CTD/sock" -n "$CTR_NS")
	CRI=(/usr/bin/python3 "$E2E_DIR/cri.py" "$CTD/sock")
	for i in $(seq 1 100); do
		"${CTR[@]}" version >/dev/null 2>&1 && break
		kill -0 "$CTD_PID" 2>/dev/null || break
		sleep 0.1
	done
	"${CTR[@]}" version >/dev/null 2>&1 ||
		fail "containerd cannot start on this machine: $(tail -5 "$CTD/log")"
	if [[ ${1:-} == cri ]]; then
		CTR=(in_env ctr --address "$CTD/sock" -n k8s.io)
	fi
	"${CTR[@]}" image import "$(e2e_image_tar)" >"$CTD/import.log" 2>&1 ||
		fail "ctr image import: $(tail -3 "$CTD/import.log")"
}

# cri_ready: the CRI plugin has loaded a CNI conf (NetworkReady).
cri_ready() {
	local i
	for i in $(seq 1 50); do
		"${CRI[@]}" network-ready 2>/dev/null && return 0
		sleep 0.1
	done
	"${CRI[@]}" network-ready || fail "the CRI plugin never became NetworkReady: $(grep -i cni "$CTD/log" | tail -3)"
}

# cri_run NAME [PORTMAP...]: RunPodSandbox (namespace "e2e", hostname
# NAME, cgroup parent under the test's own cgroup).  Sets SID, POD_IP and
# POD_NETNS; fails the test if the call fails.
cri_run() {
	local name=$1 st
	shift
	SID=$("${CRI[@]}" run "$name" "uid-$name-$$" e2e "$name" "/$CGROUP_PARENT" "$@" 2>"$T/cri.err") ||
		fail "RunPodSandbox $name failed: $(cat "$T/cri.err")"
	st=$("${CRI[@]}" status "$SID") || fail "PodSandboxStatus $SID"
	assert_json .state READY "$st"
	POD_IP=$(jq -r .ip <<<"$st")
	POD_NETNS=$(jq -r .netns <<<"$st")
	[[ -n $POD_IP && $POD_NETNS == /var/run/netns/cni-* ]] ||
		fail "sandbox $name: ip '$POD_IP', netns '$POD_NETNS'"
}

# podman_up: podman with the CNI backend and private everything: storage
# (graph/run roots), tmp dir, events log, CNI conf dir ($CNI_CONF) and plugin
# dir (/opt/cni/bin, our binaries), cgroupfs.  Sets PODMAN (the command) and
# loads the busybox image.  A podman that cannot work here FAILS the test.
podman_up() {
	local P=$T/podman backend
	need_tools podman:podman conmon:conmon runc:runc
	mkdir -p "$P/tmp"
	# default_ulimits: without both, runc fails with "error setting rlimit
	# type 7: operation not permitted" on these machines.
	cat >"$P/containers.conf" <<-EOF
		[containers]
		default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
		log_driver = "k8s-file"
		[network]
		network_backend = "cni"
		cni_plugin_dirs = ["/opt/cni/bin"]
		network_config_dir = "$CNI_CONF"
		default_network = "${1:-weft}"
		[engine]
		cgroup_manager = "cgroupfs"
		events_logger = "file"
		events_logfile_path = "$P/events.log"
		tmp_dir = "$P/tmp"
		runtime = "runc"
		image_copy_tmp_dir = "$P/tmp"
	EOF
	cat >"$P/storage.conf" <<-EOF
		[storage]
		driver = "overlay"
		runroot = "$P/run"
		graphroot = "$P/root"
	EOF
	PODMAN=(in_env env CONTAINERS_CONF="$P/containers.conf" CONTAINERS_STORAGE_CONF="$P/storage.conf"
		TMPDIR="$P/tmp" podman)
	on_teardown "${PODMAN[*]} rm -a -f -t 0"
	backend=$("${PODMAN[@]}" info --format '{{.Host.NetworkBackend}}' 2>"$P/info.err") ||
		fail "podman cannot run on this machine: $(tail -3 "$P/info.err")"
	assert_eq cni "$backend" "podman network backend"
	"${PODMAN[@]}" load -i "$(e2e_image_tar)" >"$P/load.log" 2>&1 ||
		fail "podman load: $(tail -3 "$P/load.log")"
}

# e2e_spy NAME...: replaces $CNI_BIN/NAME with a recorder that saves the
# call (CNI_* environment, stdin, stdout, exit code) under $SPY_DIR, then runs
# our real binary (moved to $T/cni/real) with the same stdin, environment and
# arguments.  Lets a test assert what the runtime actually sent.
e2e_spy() {
	SPY_DIR=$T/calls
	mkdir -p "$SPY_DIR" "$T/cni/real"
	local p
	for p in "$@"; do
		[[ -x $CNI_BIN/$p ]] || continue
		# A link to weft keeps its name (the role) and points to weft by an
		# absolute path, which moving a relative link would break.
		ln -s "$(readlink -f "$CNI_BIN/$p")" "$T/cni/real/$p" && rm "$CNI_BIN/$p" ||
			fail "cannot move $p aside"
		cat >"$CNI_BIN/$p" <<-EOF
			#!/bin/bash
			# weft e2e spy for $p: record the call, then run the real plugin.
			f=$SPY_DIR/\$(date +%s%N).\$\$.$p
			{ env | grep '^CNI_' | sort; } >"\$f.env"
			cat >"\$f.in"
			"$T/cni/real/$p" "\$@" <"\$f.in" >"\$f.out"
			rc=\$?
			echo "\$rc" >"\$f.rc"
			cat "\$f.out"
			exit "\$rc"
		EOF
		chmod 755 "$CNI_BIN/$p"
	done
}

# spy_calls PLUGIN [CMD]: the recorded calls (file prefixes), oldest first.
spy_calls() {
	local f
	for f in "$SPY_DIR"/*."$1".env; do
		[[ -f $f ]] || continue
		[[ -z ${2:-} ]] || grep -qx "CNI_COMMAND=$2" "$f" || continue
		echo "${f%.env}"
	done
}

# spy_env CALL NAME: the value of CNI variable NAME in a recorded call
# ("<unset>" if it was not set at all).
spy_env() {
	if grep -q "^$2=" "$1.env"; then
		grep -m1 "^$2=" "$1.env" | cut -d= -f2-
	else
		echo "<unset>"
	fi
}

# The node's uplink: a veth from the node netns to a "client" netns that
# stands for another machine.  Sets CLIENT (netns path).
e2e_uplink() {
	new_pod CLIENT
	local c=${CLIENT##*/}
	in_node ip link add wtup0 type veth peer name eth0 netns "$c" || fail "uplink veth"
	in_node ip addr add "$NODE_IP/24" dev wtup0
	in_node ip link set wtup0 up
	in_ns "$CLIENT" ip addr add "$CLIENT_IP/24" dev eth0
	in_ns "$CLIENT" ip link set eth0 up
	in_node sysctl -qw net.ipv4.ip_forward=1
}

# http_get NETNS IP PORT [PATH]: body of GET PATH (default /cgi-bin/host:
# the answering container's hostname) from NETNS (see in_netns; "" = the
# node) through bash's /dev/tcp.  Prints the body; returns 1 if nothing
# answered within a few seconds (HTTP_TRIES attempts, default 6).
http_get() {
	local ns=$1 ip=$2 port=$3 path=${4:-/cgi-bin/host} out i run=(in_node)
	[[ -n $ns ]] && run=(in_netns "$ns")
	for ((i = 0; i < ${HTTP_TRIES:-6}; i++)); do
		out=$("${run[@]}" timeout 1 bash -c "$_HTTP_GET" _ "$ip" "$port" "$path" 2>/dev/null)
		if [[ -n $out ]]; then
			printf '%s\n' "$out" | tr -d '\r' | sed '1,/^$/d'
			return 0
		fi
		sleep 0.3
	done
	return 1
}
# shellcheck disable=SC2016
_HTTP_GET='exec 3<>"/dev/tcp/$1/$2" && printf "GET %s HTTP/1.0\r\n\r\n" "$3" >&3 && cat <&3'

# The busybox image as a docker-save tar (cached per test in $T).
e2e_image_tar() {
	local tar=$T/busybox.tar
	[[ -x /bin/busybox ]] || fail "/bin/busybox is missing: apt-get install busybox-static"
	[[ -f $tar ]] || /usr/bin/python3 "$E2E_DIR/mkimage.py" "$tar" "$E2E_IMAGE" /bin/busybox ||
		fail "cannot build the busybox image (busybox-static installed?)"
	echo "$tar"
}

# Builds cnitool (tests/e2e/cnitool/main.go over Debian's libcni), offline,
# into $T.  Sets CNITOOL.
e2e_build_cnitool() {
	CNITOOL=$T/cnitool
	need_tools go:golang-go
	[[ -d /usr/share/gocode/src/github.com/containernetworking/cni/libcni ]] ||
		fail "Debian's libcni sources are missing: apt-get install golang-github-appc-cni-dev"
	(cd "$E2E_DIR/cnitool" && GO111MODULE=off GOPATH=/usr/share/gocode CGO_ENABLED=0 \
		GOCACHE=$T/gocache GOFLAGS= go build -o "$CNITOOL" .) >"$T/go-build.log" 2>&1 ||
		fail "cannot build cnitool (golang-go, golang-github-appc-cni-dev): $(tail -5 "$T/go-build.log")"
	rm -rf "$T/gocache"
}

# What pods may leave in the node: veths (but the uplink), host-local IP
# files (default dataDir and $DATA), flannel's saved confs, per-pod iptables
# rules (bridge ipMasq chains, portmap DNAT chains, rules with an "id:"
# comment) and runtime-made netns (not the test's own e2epod<k>).
e2e_state() {
	echo "# veths"
	node_veths | grep -vx wtup0 | sort
	echo "# ip files"
	(cd "$VARLIB_CNI" 2>/dev/null && find . -path './networks/*' -type f ! -name lock ! -name 'last_reserved_ip.*' | sort)
	[[ -d $DATA ]] && (cd "$DATA" && find . -type f ! -name lock ! -name 'last_reserved_ip.*' | sort)
	echo "# flannel"
	[[ -d $VARLIB_CNI/flannel ]] && ls "$VARLIB_CNI/flannel"
	echo "# rules"
	in_node iptables-save 2>/dev/null | grep -E '^-A' | grep -E 'CNI-DN-|CNI-[0-9a-f]{24}|id: ' | sort
	echo "# runtime netns"
	in_env ls /run/netns 2>/dev/null | grep -v '^e2epod'
}

# The state of an idle node: no veth, no IP file, no per-pod rule, no netns.
assert_node_clean() {
	local s
	s=$(e2e_state)
	[[ $s == $'# veths\n# ip files\n# flannel\n# rules\n# runtime netns' ]] ||
		fail "the node is not clean:"$'\n'"$s"
}
