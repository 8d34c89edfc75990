#!/bin/sh
# Regenerates the golden outputs from the Go reference plugins in /usr/lib/cni.
# Everything runs inside throwaway network namespaces that are always removed.
# Usage: sh gen.sh   (as root, from this directory)
set -u
GO=/usr/lib/cni
OUT=$(pwd)
HOSTNS=weft-core-h-$$
CTRNS=weft-core-c-$$
DATA=$(mktemp -d)
cleanup() {
    ip netns del "$HOSTNS" 2>/dev/null
    ip netns del "$CTRNS" 2>/dev/null
    rm -rf "$DATA"
}
trap cleanup EXIT INT TERM
ip netns add "$HOSTNS"
ip netns add "$CTRNS"
ip -n "$HOSTNS" link set lo up

# run_plugin <plugin> <command> <containerid> <ifname> <stdin> <outfile> [extra env...]
run_plugin() {
    _plugin=$1; _cmd=$2; _cid=$3; _ifn=$4; _conf=$5; _out=$6; shift 6
    printf '%s' "$_conf" | ip netns exec "$HOSTNS" env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin \
        CNI_COMMAND="$_cmd" CNI_CONTAINERID="$_cid" CNI_NETNS=/var/run/netns/$CTRNS \
        CNI_IFNAME="$_ifn" CNI_PATH=$GO "$@" $GO/$_plugin >"$OUT/$_out" 2>"$OUT/$_out.stderr"
    echo $? >"$OUT/$_out.rc"
    [ -s "$OUT/$_out.stderr" ] || rm -f "$OUT/$_out.stderr"
}

printf "nameserver 10.1.2.53\nsearch example.com\noptions ndots:2\n" >"$DATA/resolv.conf"
n=0
for v in 0.1.0 0.2.0 0.3.0 0.3.1 0.4.0 1.0.0; do
    n=$((n+1))
    hl='{"cniVersion":"'$v'","name":"mynet","type":"ipvlan","ipam":{"type":"host-local","dataDir":"'$DATA'/hl-'$v'","ranges":[[{"subnet":"10.1.2.0/24"}],[{"subnet":"2001:db8:1::/64"}]],"routes":[{"dst":"0.0.0.0/0"},{"dst":"192.168.0.0/16","gw":"10.1.2.1"},{"dst":"::/0"}],"resolvConf":"'$DATA'/resolv.conf"}}'
    run_plugin host-local ADD cid$n eth0 "$hl" "host-local-$v.json"
    run_plugin host-local DEL cid$n eth0 "$hl" "host-local-del-$v.json"

    br='{"cniVersion":"'$v'","name":"mynet","type":"bridge","bridge":"cni'$n'","isGateway":true,"ipam":{"type":"host-local","dataDir":"'$DATA'/br","subnet":"10.1.'$n'.0/24","routes":[{"dst":"0.0.0.0/0"}]}}'
    run_plugin bridge ADD br$n eth$n "$br" "bridge-$v.json"
done

# The v1.1.1 reference plugins predate spec 1.1.0: keep their rejection as a layout golden.
run_plugin host-local ADD cid eth0 "$(echo "$hl" | sed s/1.0.0/1.1.0/)" "err-incompatible-110.json"

# Error paths and metadata.
conf='{"cniVersion":"1.0.0","name":"mynet","type":"host-local","ipam":{"type":"host-local","subnet":"10.9.0.0/24","dataDir":"'$DATA'/err"}}'
run_plugin host-local VERSION x eth0 'garbage' "version.out"
run_plugin host-local ADD cid eth0 '{"cniVersion":"0.5.0","name":"mynet","type":"host-local"}' "err-incompatible.json"
run_plugin host-local CHECK cid eth0 '{"cniVersion":"0.3.1","name":"mynet","type":"host-local"}' "err-check-version.json"
run_plugin host-local ADD cid eth0 '{"cniVersion":"1.0.0","type":"host-local"}' "err-missing-name.json"
run_plugin host-local ADD cid eth0 '{"cniVersion":"1.0.0","name":"../x","type":"host-local"}' "err-bad-name.json"
run_plugin host-local ADD cid eth0 '{"cniVersion":"1.0.0","name":' "err-bad-json.json"
run_plugin host-local ADD 'bad/cid' eth0 "$conf" "err-bad-cid.json"
run_plugin host-local ADD cid 'eth0123456789abc' "$conf" "err-long-ifname.json"
run_plugin host-local BOGUS cid eth0 "$conf" "err-unknown-command.json"
printf '%s' "$conf" | env -i CNI_COMMAND=ADD $GO/host-local >"$OUT/err-missing-env.json" 2>/dev/null
echo $? >"$OUT/err-missing-env.json.rc"
env -i $GO/host-local >"$OUT/about.stdout" 2>"$OUT/about.stderr" </dev/null
echo $? >"$OUT/about.rc"
