#!/usr/bin/env bash
# Installs the Debian packages weft's build, tests, demo and packaging (scripts/package) need (idempotent).
# Go reference plugins (containernetworking-plugins) are only used for side-by-side and interop tests.
set -euo pipefail
pkgs=(iproute2 iptables nftables ethtool iputils-ping jq conntrack procps kmod util-linux time python3 g++
      binutils xz-utils  # scripts/package: ar, tar --xz
      containernetworking-plugins openssl ca-certificates shfmt etcd-server etcd-client iperf3
      # runtimes for the end-to-end tests (tests/e2e)
      strace  # tests/scripts/multicall.sh: counts execve
      containerd runc podman golang-go golang-github-appc-cni-dev busybox-static python3-grpcio python3-yaml
      # kube mode: the test API server (tests/kube) is driven by curl and by the real kubectl
      curl)
# Debian's kubectl is the package kubernetes-client.  A machine that already has a kubectl
# (Kubernetes' or Google's apt repository ship a package named kubectl owning /usr/bin/kubectl,
# which kubernetes-client cannot overwrite) keeps it: the tests only need the command.
command -v kubectl >/dev/null 2>&1 || pkgs+=(kubernetes-client)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "install-deps: cargo not found; install a Rust toolchain (rustup) first" >&2
  exit 1
fi
