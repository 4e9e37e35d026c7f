#!/usr/bin/env python3
"""Tiny QMP / QEMU-guest-agent client for scripts (the Java controller is the real one).

  guest-vmctl.py RUN qmp '{"execute":"qom-set","arguments":{...}}'   -> prints the JSON reply
  guest-vmctl.py RUN qom-set PATH PROP VALUE                        (VALUE parsed as JSON)
  guest-vmctl.py RUN exec [--timeout S] [--env K=V]... -- CMD ARGS...  -> guest-exec, prints
      stdout/stderr, exits with the command's exit code (124 on timeout)
  guest-vmctl.py RUN ping                                            -> guest-ping (exit 0 if ok)
RUN is the run directory of scripts/boot.sh (qmp.sock, qga.sock).
"""
import base64, json, os, socket, sys, time


def rpc(path, cmds, timeout=30.0, qmp=False):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    f = s.makefile("rwb")
    out = []
    if qmp:
        json.loads(f.readline())                       # greeting
        f.write(b'{"execute":"qmp_capabilities"}\n'); f.flush()
        json.loads(f.readline())
    else:
        # resync the agent: guest-sync-delimited, skip anything stale
        sid = int(time.time() * 1000) % 1000000
        f.write(b'\xff' + json.dumps({"execute": "guest-sync-delimited", "arguments": {"id": sid}}).encode() + b"\n"); f.flush()
        while True:
            line = f.readline()
            if not line:
                raise RuntimeError("agent closed")
            line = line.lstrip(b"\xff").strip()
            if not line:
                continue
            try:
                if json.loads(line).get("return") == sid:
                    break
            except ValueError:
                pass
    for c in cmds:
        f.write(json.dumps(c).encode() + b"\n"); f.flush()
        while True:
            r = json.loads(f.readline())
            if "event" in r:
                continue
            out.append(r)
            break
    s.close()
    return out


def main():
    run, op, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    qmp, qga = os.path.join(run, "qmp.sock"), os.path.join(run, "qga.sock")
    if op == "qmp":
        print(json.dumps(rpc(qmp, [json.loads(args[0])], qmp=True)[0]))
    elif op == "qom-set":
        r = rpc(qmp, [{"execute": "qom-set", "arguments": {"path": args[0], "property": args[1], "value": json.loads(args[2])}}], qmp=True)[0]
        if "error" in r:
            sys.exit("qom-set: %s" % r["error"])
    elif op == "qom-get":
        r = rpc(qmp, [{"execute": "qom-get", "arguments": {"path": args[0], "property": args[1]}}], qmp=True)[0]
        print(json.dumps(r.get("return", r)))
    elif op == "ping":
        deadline = time.time() + float(args[0] if args else 30)
        while time.time() < deadline:
            try:
                if "return" in rpc(qga, [{"execute": "guest-ping"}], timeout=3)[0]:
                    return
            except Exception:
                time.sleep(0.5)
        sys.exit("guest agent not answering")
    elif op == "exec":
        timeout, env = 600.0, []
        while args and args[0] != "--":
            if args[0] == "--timeout":
                timeout = float(args[1]); args = args[2:]
            elif args[0] == "--env":
                env.append(args[1]); args = args[2:]
            else:
                sys.exit("bad exec option %s" % args[0])
        args = args[1:]
        env.append("PATH=/opt/p2plab/bin:/bin:/sbin:/usr/bin:/usr/sbin")
        r = rpc(qga, [{"execute": "guest-exec", "arguments": {"path": args[0], "arg": args[1:], "env": env, "capture-output": True}}])[0]
        if "error" in r:
            sys.exit("guest-exec: %s" % r["error"])
        pid = r["return"]["pid"]
        deadline = time.time() + timeout
        while True:
            st = rpc(qga, [{"execute": "guest-exec-status", "arguments": {"pid": pid}}])[0]["return"]
            if st.get("exited"):
                break
            if time.time() > deadline:
                sys.stderr.write("guest-exec: timeout after %.0f s\n" % timeout)
                sys.exit(124)
            time.sleep(0.3)
        sys.stdout.write(base64.b64decode(st.get("out-data", "")).decode(errors="replace"))
        sys.stderr.write(base64.b64decode(st.get("err-data", "")).decode(errors="replace"))
        sys.exit(st.get("exitcode", 128 + st.get("signal", 0)))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
