"""Cut etcd's rpc.proto down to what weft uses, without options/imports."""
import re, sys

MSGS = """ResponseHeader RangeRequest RangeResponse PutRequest PutResponse
DeleteRangeRequest DeleteRangeResponse RequestOp ResponseOp Compare TxnRequest TxnResponse
WatchRequest WatchCreateRequest WatchCancelRequest WatchProgressRequest WatchResponse
LeaseGrantRequest LeaseGrantResponse LeaseRevokeRequest LeaseRevokeResponse
LeaseTimeToLiveRequest LeaseTimeToLiveResponse AuthenticateRequest AuthenticateResponse""".split()
RPCS = {"KV": ["Range", "Put", "DeleteRange", "Txn"], "Watch": ["Watch"],
        "Lease": ["LeaseGrant", "LeaseRevoke", "LeaseTimeToLive"], "Auth": ["Authenticate"]}

def blocks(text):
    """Top-level 'message X {...}' / 'service X {...}' blocks."""
    out, i = {}, 0
    for m in re.finditer(r'^(message|service) (\w+) \{', text, re.M):
        depth, j = 0, m.start()
        while True:
            c = text[j]
            depth += c == '{'
            depth -= c == '}'
            j += 1
            if c == '}' and depth == 0:
                break
        out[(m.group(1), m.group(2))] = text[m.start():j]
    return out

def clean(block):
    block = re.sub(r'\n\s*option \([^;]*?\)\s*=\s*\{.*?\n\s*\};', '', block, flags=re.S)
    block = re.sub(r'\n\s*option \([^)]*\)[^;]*;', '', block)
    block = re.sub(r'\s*\[\([^\]]*\]', '', block)
    block = re.sub(r'\{\s*\}', ';', block)
    block = re.sub(r'\n\s*//[^\n]*', '', block)  # comments: the docs live upstream
    block = re.sub(r'\n\s*\n', '\n', block)
    return block

def service(block, name):
    keep = []
    for m in re.finditer(r'rpc (\w+)\(.*?\n  \}', block, re.S):
        if m.group(1) in RPCS[name]:
            keep.append('  ' + clean(m.group(0)).strip())
    return "service %s {\n%s\n}" % (name, "\n".join(keep))

src = open(sys.argv[1]).read()
b = blocks(src)
parts = ['syntax = "proto3";', 'package etcdserverpb;', 'import "kv.proto";', '']
parts += [service(b[("service", s)], s) for s in RPCS]
parts += [clean(b[("message", m)]) for m in MSGS]
print("\n\n".join(parts))
