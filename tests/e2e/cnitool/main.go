// cnitool for weft's end-to-end tests: the libcni driver of upstream cnitool
// (containernetworking/cni/cnitool), rebuilt here because Debian ships libcni
// but not cnitool's main. Built offline by tests/e2e/helpers.bash:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode CGO_ENABLED=0 go build
//
// Usage: cnitool add|check|del <net> <netns>
//
// Environment, as upstream: NETCONFPATH (default /etc/cni/net.d), CNI_PATH,
// CNI_ARGS ("K=V;K=V"), CAP_ARGS (JSON capability args such as
// {"portMappings":[...]}), CNI_IFNAME (default eth0). Added for the tests:
// CNI_CACHE_DIR (libcni's result cache, default /var/lib/cni) and
// CNI_CONTAINERID (default: upstream's "cnitool-" + 20 hex of sha512(netns)).
package main

import (
	"context"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

const (
	envCNIPath        = "CNI_PATH"
	envNetDir         = "NETCONFPATH"
	envCapabilityArgs = "CAP_ARGS"
	envCNIArgs        = "CNI_ARGS"
	envCNIIfname      = "CNI_IFNAME"
	envCacheDir       = "CNI_CACHE_DIR"
	envContainerID    = "CNI_CONTAINERID"

	defaultNetDir = "/etc/cni/net.d"
)

func usage() {
	exe := filepath.Base(os.Args[0])
	fmt.Fprintf(os.Stderr, "%s: Add, check, or remove network interfaces from a network namespace\n", exe)
	fmt.Fprintf(os.Stderr, "  %s add   <net> <netns>\n", exe)
	fmt.Fprintf(os.Stderr, "  %s check <net> <netns>\n", exe)
	fmt.Fprintf(os.Stderr, "  %s del   <net> <netns>\n", exe)
	os.Exit(1)
}

func exit(err error) {
	if err == nil {
		os.Exit(0)
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[0], err)
	os.Exit(1)
}

// parseArgs splits CNI_ARGS the way upstream cnitool does.
func parseArgs(s string) ([][2]string, error) {
	var out [][2]string
	if s == "" {
		return out, nil
	}
	for _, pair := range strings.Split(s, ";") {
		kv := strings.Split(pair, "=")
		if len(kv) != 2 || kv[0] == "" || kv[1] == "" {
			return nil, fmt.Errorf("invalid CNI_ARGS pair %q", pair)
		}
		out = append(out, [2]string{kv[0], kv[1]})
	}
	return out, nil
}

func main() {
	if len(os.Args) < 4 {
		usage()
	}
	netdir := os.Getenv(envNetDir)
	if netdir == "" {
		netdir = defaultNetDir
	}
	netconf, err := libcni.LoadConfList(netdir, os.Args[2])
	if err != nil {
		exit(err)
	}

	var capabilityArgs map[string]interface{}
	if s := os.Getenv(envCapabilityArgs); s != "" {
		if err := json.Unmarshal([]byte(s), &capabilityArgs); err != nil {
			exit(err)
		}
	}
	cniArgs, err := parseArgs(os.Getenv(envCNIArgs))
	if err != nil {
		exit(err)
	}
	ifName := os.Getenv(envCNIIfname)
	if ifName == "" {
		ifName = "eth0"
	}

	netns := os.Args[3]
	netns, err = filepath.Abs(netns)
	if err != nil {
		exit(err)
	}
	containerID := os.Getenv(envContainerID)
	if containerID == "" {
		// Upstream: "cnitool-" + the first 20 hex digits of sha512(netns).
		containerID = fmt.Sprintf("cnitool-%x", sha512.Sum512([]byte(netns)))[:28]
	}

	cacheDir := os.Getenv(envCacheDir)
	var cninet *libcni.CNIConfig
	if cacheDir != "" {
		cninet = libcni.NewCNIConfigWithCacheDir(filepath.SplitList(os.Getenv(envCNIPath)), cacheDir, nil)
	} else {
		cninet = libcni.NewCNIConfig(filepath.SplitList(os.Getenv(envCNIPath)), nil)
	}
	rt := &libcni.RuntimeConf{
		ContainerID:    containerID,
		NetNS:          netns,
		IfName:         ifName,
		Args:           cniArgs,
		CapabilityArgs: capabilityArgs,
	}

	ctx := context.TODO()
	switch os.Args[1] {
	case "add":
		result, err := cninet.AddNetworkList(ctx, netconf, rt)
		if result != nil {
			_ = result.Print()
		}
		exit(err)
	case "check":
		exit(cninet.CheckNetworkList(ctx, netconf, rt))
	case "del":
		exit(cninet.DelNetworkList(ctx, netconf, rt))
	}
	usage()
}
