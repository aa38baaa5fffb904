"""The NATS chores the check scripts share, as one small command (run with the tools
venv's python, which has nats-py: `"$(scripts/tools --python)" scripts/lib/natsctl.py ...`).

  natsctl.py ports N                    N free TCP ports on 127.0.0.1, space-separated
  natsctl.py wait-server URL            until a NATS server accepts connections (10 s)
  natsctl.py wait-stream URL            until a JetStream stream captures the bridge's
                                        subjects (the ingest functions create it; 15 s)
  natsctl.py wait-services URL NAME...  until every micro service NAME answers $SRV.PING
                                        and the stream exists (20 s)
  natsctl.py publish URL FILE           publishes a fixture file ({"subject", "data"} per line)
                                        once the stream exists
  natsctl.py wait-stats URL KEY=VALUE...  until system.stats says so (20 s)

Exit status 0 when done, 1 with one line on stderr when it timed out.
"""

import asyncio
import json
import socket
import sys

import nats

STREAM_PROBE = b'{"subject": "kryten.events.cytube.x.chatmsg"}'


def ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    print(*[s.getsockname()[1] for s in socks])
    for s in socks:
        s.close()
    return 0


async def wait_server(url):
    for _ in range(100):
        try:
            nc = await nats.connect(url, allow_reconnect=False, connect_timeout=1)
            await nc.close()
            return 0
        except Exception:
            await asyncio.sleep(0.1)
    print(f"no NATS server answers at {url}", file=sys.stderr)
    return 1


async def has_stream(nc):
    try:
        m = await nc.request("$JS.API.STREAM.NAMES", STREAM_PROBE, timeout=1)
        return bool(json.loads(m.data).get("streams"))
    except Exception:
        return False


async def wait_stream(nc, tries=150):
    for _ in range(tries):
        if await has_stream(nc):
            return True
        await asyncio.sleep(0.1)
    return False


async def services_seen(nc):
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await nc.publish("$SRV.PING", b"", reply=inbox)
    seen = set()
    try:
        while True:
            r = await sub.next_msg(timeout=0.3)
            seen.add(json.loads(r.data).get("name"))
    except Exception:
        pass
    await sub.unsubscribe()
    return seen


async def wait_services(nc, names):
    want = set(names)
    seen, stream = set(), False
    for _ in range(60):
        stream = await has_stream(nc)
        seen = await services_seen(nc)
        if stream and want <= seen:
            return 0
        await asyncio.sleep(0.2)
    print(f"not ready: missing {sorted(want - seen)}, stream {'yes' if stream else 'no'}", file=sys.stderr)
    return 1


async def publish(nc, path):
    if not await wait_stream(nc):
        print("no JetStream stream captures kryten.events.cytube.> after 15 s", file=sys.stderr)
        return 1
    for line in open(path, encoding="utf-8"):
        if line.strip():
            e = json.loads(line)
            await nc.publish(e["subject"], e["data"].encode())
    await nc.flush()
    return 0


async def wait_stats(nc, pairs):
    want = {k: json.loads(v) for k, v in (p.split("=", 1) for p in pairs)}
    data = {}
    for _ in range(100):
        try:
            m = await nc.request("userstats.query.system.stats", b"{}", timeout=1)
            data = json.loads(m.data).get("data", {})
            if all(data.get(k) == v for k, v in want.items()):
                return 0
        except Exception:
            pass
        await asyncio.sleep(0.2)
    print(f"system.stats never said {want}: {data}", file=sys.stderr)
    return 1


async def with_client(url, work):
    nc = await nats.connect(url)
    try:
        return await work(nc)
    finally:
        await nc.close()


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    verb, args = argv[1], argv[2:]
    if verb == "ports" and len(args) == 1:
        return ports(int(args[0]))
    if verb == "wait-server" and len(args) == 1:
        return asyncio.run(wait_server(args[0]))
    if verb == "wait-stream" and len(args) == 1:
        async def stream(nc):
            if await wait_stream(nc):
                return 0
            print("no JetStream stream captures kryten.events.cytube.> after 15 s", file=sys.stderr)
            return 1
        return asyncio.run(with_client(args[0], stream))
    if verb == "wait-services" and len(args) >= 2:
        return asyncio.run(with_client(args[0], lambda nc: wait_services(nc, args[1:])))
    if verb == "publish" and len(args) == 2:
        return asyncio.run(with_client(args[0], lambda nc: publish(nc, args[1])))
    if verb == "wait-stats" and len(args) >= 2:
        return asyncio.run(with_client(args[0], lambda nc: wait_stats(nc, args[1:])))
    print(f"natsctl.py: cannot do {' '.join(argv[1:])!r} (see the top of scripts/lib/natsctl.py)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
