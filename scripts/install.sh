#!/usr/bin/env bash
# Installs weft on a node: the CNI plugins (the multicall binary weft, and
# bridge host-local portmap flannel loopback as symlinks to it) into the CNI
# plugin directory, a conflist
# from conf/ into the CNI config directory, and flanneld with a systemd unit
# and a net-conf.json: each only when asked for.  Without one of --plugins,
# --conf or --with-flanneld it prints this text and changes nothing.
#
#   scripts/install.sh --plugins [--conf NAME] [--with-flanneld] [options]
#
# What to install (any combination, at least one):
#   --plugins         the CNI plugins (weft, and a symlink to it per plugin)
#                     into the plugin directory
#   --conf NAME       conf/NAME into the config directory (NAME may omit the
#                     .conf/.conflist extension); e.g. 10-weft-bridge.conflist
#                     or kube-flannel.conflist
#   --with-flanneld   flanneld into /usr/local/bin, the systemd unit
#                     /etc/systemd/system/weft-flanneld.service (from
#                     conf/flanneld.service), its environment file
#                     /etc/default/weft-flanneld and
#                     /etc/kube-flannel/net-conf.json (flanneld reads the
#                     network config from etcd, <etcd-prefix>/config, as Go
#                     flanneld does: the file is what to put there)
#
# Options:
#   --from DIR        built binaries (default: $WEFT_BIN, else
#                     <repo>/target/x86_64-unknown-linux-gnu/release)
#   --prefix DIR      CNI plugin directory (default /opt/cni/bin)
#   --conf-dir DIR    CNI config directory (default /etc/cni/net.d)
#   --conf-name FILE  install the --conf file under this name instead
#                     (runtimes use the lexically first file: kube-flannel's
#                     is 10-flannel.conflist)
#   --network CIDR    net-conf.json "Network" (default 10.244.0.0/16)
#   --backend TYPE    net-conf.json backend: vxlan (default) or host-gw
#   --destdir DIR     stage everything under DIR (default: $DESTDIR)
#   --force           replace existing files whose content differs
#   --dry-run         print what would be done, change nothing
#   -h, --help        this text
#
# Prints one line per file or link: "installed", "unchanged" (identical file,
# or the same link, already there), "replaced" (--force) or "conflict" (a
# different file is there, e.g. a Go plugin).
# Without --force a conflict changes nothing at all and exits 1.  Files are
# written to a temporary name and renamed into place, so a runtime never
# executes a half-written plugin.
# Nothing is started or enabled: the last lines say what to run next.
set -euo pipefail
# Byte order, as runtimes sort config file names (Go's sort.Strings).
export LC_ALL=C

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PLUGINS=(bridge host-local portmap flannel loopback)

FROM=${WEFT_BIN:-$REPO/target/x86_64-unknown-linux-gnu/release}
BIN_DIR=/opt/cni/bin
CONF_DIR=/etc/cni/net.d
CONF=
CONF_NAME=
WITH_PLUGINS=0
WITH_FLANNELD=0
NETWORK=10.244.0.0/16
BACKEND=vxlan
DEST=${DESTDIR:-}
FORCE=0
DRY_RUN=0
# Where --with-flanneld puts its files (under DESTDIR).
FLANNELD_BIN=/usr/local/bin/flanneld
UNIT=/etc/systemd/system/weft-flanneld.service
ENV_FILE=/etc/default/weft-flanneld
NET_CONF=/etc/kube-flannel/net-conf.json

# usage [STATUS]: the header comment; on stderr when STATUS says misuse.
usage() {
	local text
	text=$(sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//')
	if [[ ${1:-0} == 0 ]]; then echo "$text"; else echo "$text" >&2; fi
	exit "${1:-0}"
}

die() {
	echo "install.sh: $*" >&2
	exit 2
}

need_arg() { [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value"; }

while [[ $# -gt 0 ]]; do
	case $1 in
	--plugins) WITH_PLUGINS=1; shift ;;
	--from) need_arg "$@"; FROM=$2; shift 2 ;;
	--prefix | --bin-dir) need_arg "$@"; BIN_DIR=$2; shift 2 ;;
	--conf-dir) need_arg "$@"; CONF_DIR=$2; shift 2 ;;
	--conf) need_arg "$@"; CONF=$2; shift 2 ;;
	--conf-name) need_arg "$@"; CONF_NAME=$2; shift 2 ;;
	--with-flanneld) WITH_FLANNELD=1; shift ;;
	--network) need_arg "$@"; NETWORK=$2; shift 2 ;;
	--backend) need_arg "$@"; BACKEND=$2; shift 2 ;;
	--destdir) need_arg "$@"; DEST=$2; shift 2 ;;
	--force) FORCE=1; shift ;;
	--dry-run) DRY_RUN=1; shift ;;
	-h | --help) usage 0 ;;
	--*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;;
	*) echo "install.sh: unknown argument '$1'" >&2; usage 2 ;;
	esac
done

# Nothing asked for: say how to ask, touch nothing.
[[ $WITH_PLUGINS == 1 || -n $CONF || $WITH_FLANNELD == 1 ]] || usage 2
[[ $WITH_PLUGINS == 0 && $WITH_FLANNELD == 0 ]] || [[ -d $FROM ]] ||
	die "no build directory $FROM (scripts/build first, or --from DIR)"
for d in "$BIN_DIR" "$CONF_DIR"; do
	[[ $d == /* ]] || die "$d: directories must be absolute"
done
[[ -z $DEST || $DEST == /* ]] || DEST=$(pwd)/$DEST
DEST=${DEST%/}
case $BACKEND in vxlan | host-gw) ;; *) die "--backend must be vxlan or host-gw, got '$BACKEND'" ;; esac
[[ $NETWORK =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$ ]] || die "--network must be an IPv4 CIDR, got '$NETWORK'"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/weft-install.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# The plan: parallel arrays of source file, destination path (without
# DESTDIR), mode.
# A MODE of "link" makes DST a symlink to SRC (a name in the same directory).
SRC=() DST=() MODE=()
plan() { SRC+=("$1"); DST+=("$2"); MODE+=("$3"); }

# ---------------------------------------------------------------- plugins
# One file, weft, and each plugin name a relative symlink to it: weft acts
# as the plugin it is run as, and runs a delegate that is itself in-process.
if [[ $WITH_PLUGINS == 1 ]]; then
	[[ -f $FROM/weft && -x $FROM/weft ]] || die "no plugin binary (weft) in $FROM (scripts/build)"
	plan "$FROM/weft" "$BIN_DIR/weft" 0755
	for p in "${PLUGINS[@]}"; do
		plan weft "$BIN_DIR/$p" link
	done
fi

# --------------------------------------------------------------- conflist
CONF_SRC=
if [[ -n $CONF ]]; then
	for c in "$REPO/conf/$CONF" "$REPO/conf/$CONF.conflist" "$REPO/conf/$CONF.conf"; do
		if [[ -f $c && $c =~ \.(conf|conflist|json)$ ]]; then
			CONF_SRC=$c
			break
		fi
	done
	if [[ -z $CONF_SRC ]]; then
		echo "install.sh: no conf/$CONF; available:" >&2
		(cd "$REPO/conf" && ls -1 -- *.conf *.conflist 2>/dev/null | sed 's/^/  /') >&2
		exit 2
	fi
	[[ -z $CONF_NAME ]] && CONF_NAME=${CONF_SRC##*/}
	[[ $CONF_NAME =~ ^[^/]+\.(conf|conflist|json)$ ]] ||
		die "--conf-name must be a file name ending in .conf, .conflist or .json, got '$CONF_NAME'"
	plan "$CONF_SRC" "$CONF_DIR/$CONF_NAME" 0644
elif [[ -n $CONF_NAME ]]; then
	die "--conf-name needs --conf"
fi

# --------------------------------------------------------------- flanneld
if [[ $WITH_FLANNELD == 1 ]]; then
	[[ -x $FROM/flanneld ]] || die "--with-flanneld: $FROM/flanneld is not built (scripts/build)"
	plan "$FROM/flanneld" "$FLANNELD_BIN" 0755

	if [[ $BACKEND == vxlan ]]; then backend='{ "Type": "vxlan" }'; else backend='{ "Type": "host-gw" }'; fi
	cat >"$TMP/net-conf.json" <<-EOF
		{
		  "Network": "$NETWORK",
		  "EnableNFTables": false,
		  "Backend": $backend
		}
	EOF
	plan "$TMP/net-conf.json" "$NET_CONF" 0644

	cat >"$TMP/weft-flanneld" <<-EOF
		# Environment of weft-flanneld.service.  Every flanneld flag can be set
		# as FLANNELD_<FLAG_IN_UPPER_SNAKE>.  This unit leases subnets from etcd
		# (on Kubernetes, conf/kube-flannel-weft.yml runs --kube-subnet-mgr).
		FLANNELD_ETCD_ENDPOINTS=http://127.0.0.1:2379
		FLANNELD_ETCD_PREFIX=/coreos.com/network
		#FLANNELD_ETCD_CAFILE=/etc/kubernetes/pki/etcd/ca.crt
		#FLANNELD_ETCD_CERTFILE=/etc/kubernetes/pki/apiserver-etcd-client.crt
		#FLANNELD_ETCD_KEYFILE=/etc/kubernetes/pki/apiserver-etcd-client.key
		#FLANNELD_IFACE=eth0
		FLANNELD_IP_MASQ=true
	EOF
	plan "$TMP/weft-flanneld" "$ENV_FILE" 0644

	# The unit the .deb ships, with this script's paths. No --net-config-path:
	# in etcd mode flanneld reads <etcd-prefix>/config (and ignores the flag,
	# like Go); the net-conf.json above is what to put there.
	[[ -f $REPO/conf/flanneld.service ]] || die "no conf/flanneld.service"
	sed -e "s#^ExecStart=/usr/sbin/flanneld#ExecStart=$FLANNELD_BIN#" \
		-e "s#=-/etc/default/flanneld\$#=-$ENV_FILE#" \
		-e "s#/etc/default/flanneld, then: systemctl enable --now flanneld#$ENV_FILE, then: systemctl enable --now ${UNIT##*/}#" \
		"$REPO/conf/flanneld.service" >"$TMP/weft-flanneld.service"
	plan "$TMP/weft-flanneld.service" "$UNIT" 0644
fi

# ------------------------------------------------------------ check, then act
ACTION=()
CONFLICTS=0
for i in "${!SRC[@]}"; do
	target=$DEST${DST[i]}
	if [[ -e $target || -L $target ]]; then
		if [[ ${MODE[i]} == link ]]; then
			if [[ -L $target && $(readlink "$target") == "${SRC[i]}" ]]; then
				ACTION+=(unchanged)
			elif [[ $FORCE == 1 ]]; then
				[[ -d $target && ! -L $target ]] && die "$target is a directory"
				ACTION+=(replaced)
			else
				ACTION+=(conflict)
				CONFLICTS=$((CONFLICTS + 1))
			fi
		elif [[ -f $target && ! -L $target ]] && cmp -s "${SRC[i]}" "$target"; then
			ACTION+=(unchanged)
		elif [[ $FORCE == 1 ]]; then
			[[ -d $target ]] && die "$target is a directory"
			ACTION+=(replaced)
		else
			ACTION+=(conflict)
			CONFLICTS=$((CONFLICTS + 1))
		fi
	else
		ACTION+=(installed)
	fi
done

if [[ $CONFLICTS -gt 0 ]]; then
	for i in "${!SRC[@]}"; do
		[[ ${ACTION[i]} == conflict ]] &&
			echo "conflict  $DEST${DST[i]}: a different file is there (not replaced; use --force)"
	done
	echo "install.sh: $CONFLICTS conflict(s), nothing was changed" >&2
	exit 1
fi

# Copy to a temp name in the target directory, then rename: atomic for a
# runtime exec'ing the plugin at the same moment (and no ETXTBSY).
install_one() {
	local src=$1 target=$2 mode=$3 dir tmp
	dir=$(dirname "$target")
	mkdir -p "$dir"
	tmp=$(mktemp "$dir/.${target##*/}.weft-install.XXXXXX")
	if [[ $mode == link ]]; then
		if ! ln -sfn "$src" "$tmp" || ! mv -Tf "$tmp" "$target"; then
			rm -f "$tmp"
			return 1
		fi
		return 0
	fi
	if ! cp "$src" "$tmp" || ! chmod "$mode" "$tmp" || ! mv -f "$tmp" "$target"; then
		rm -f "$tmp"
		return 1
	fi
}

prefix=
[[ $DRY_RUN == 1 ]] && prefix="(dry run) "
for i in "${!SRC[@]}"; do
	target=$DEST${DST[i]}
	if [[ ${ACTION[i]} != unchanged && $DRY_RUN == 0 ]]; then
		install_one "${SRC[i]}" "$target" "${MODE[i]}" || {
			echo "install.sh: cannot write $target" >&2
			exit 1
		}
	fi
	printf '%s%-9s %s\n' "$prefix" "${ACTION[i]}" "$target"
done

# A conflist naming a plugin that is neither installed nor already there,
# or shadowed by another config file that sorts first.
if [[ -n $CONF_SRC ]]; then
	for f in "$DEST$CONF_DIR"/*.conf "$DEST$CONF_DIR"/*.conflist "$DEST$CONF_DIR"/*.json; do
		[[ -f $f && ${f##*/} < $CONF_NAME ]] &&
			echo "warning: ${f##*/} sorts before $CONF_NAME in $DEST$CONF_DIR: runtimes use the first file (--conf-name)"
	done
	types=$(grep -o '"type"[[:space:]]*:[[:space:]]*"[^"]*"' "$CONF_SRC" | sed 's/.*"\([^"]*\)"$/\1/' | sort -u)
	for t in $types; do
		[[ -x $DEST$BIN_DIR/$t || ($DRY_RUN == 1 && -x $FROM/$t) ]] ||
			echo "warning: ${CONF_SRC##*/} uses plugin '$t', which is not in $DEST$BIN_DIR"
	done
fi

if [[ $WITH_FLANNELD == 1 ]]; then
	echo "next: edit $DEST$ENV_FILE (etcd endpoints), put the network config in etcd:"
	echo "      etcdctl put /coreos.com/network/config \"\$(cat $NET_CONF)\""
	echo "      then: systemctl daemon-reload && systemctl enable --now weft-flanneld"
fi
