"""A small CyTube stand-in for the real-bridge test (tests/tests/real_bridge.rs).

It is what the real Kryten-Robot talks to instead of cytu.be:

* HTTPS `GET /socketconfig/<channel>.json` (the robot always fetches it over https; the test
  makes a throw-away certificate with `openssl` and hands it to the robot as SSL_CERT_FILE),
  answering `{"servers": [{"url": "http://127.0.0.1:<port>", "secure": false}]}`;
* Socket.IO v2 over Engine.IO v3 on that plain-HTTP port (python-socketio 4.6 /
  python-engineio 3.14, the Python twins of the socket.io 2 server CyTube runs): the robot's
  polling handshake, its websocket upgrade, `joinChannel`, `login`, `playerReady`,
  `requestPlaylist`;
* then a scripted scenario (SCENARIO below) with the payloads CyTube sends, including what
  makes the real bridge awkward: chat history replayed at join, `changeMedia` and
  `setCurrent` sent twice, full `userlist` resends, `setUserMeta` before `setAFK`.

Pacing. After each step the stand-in waits until the robot has published every event of the
step on NATS (it subscribes to `kryten.events.cytube.<channel>.>` itself), so a later step's
chat `time` (taken from the clock when the step starts, as CyTube does) is always after the
envelope time of everything before it. Then it prints one JSON line
`{"step": NAME, "events": N}` on stdout and waits for a line on stdin before the next step,
so the test can wait for the functions to have applied the step. After the last step it
prints `{"done": true}` and keeps serving until stdin closes or it is killed.

Run by the test with the `.tools/cytube-standin` venv (scripts/tools --kryten-robot):
    python cytube_standin.py --https-port P --dir D --nats URL --channel C --bot NAME
The first stdout line is `{"listening": {"https": P, "http": Q, "cert": FILE}}`.
"""

import argparse
import asyncio
import json
import logging
import os
import re
import ssl
import subprocess
import sys
import time

import engineio.asyncio_socket
import engineio.server
import nats
import socketio
from aiohttp import web

log = logging.getLogger("cytube-standin")


# python-engineio 3 encodes every polling payload in the binary framing unless the client asks
# for b64; node's engine.io 3 (what CyTube runs) uses the text framing `<len>:<packet>` whenever
# no packet is binary, and the robot's handshake reads the answer as text. Do as node does.
_engineio_ok = engineio.server.Server._ok


def _ok_like_node(self, packets=None, headers=None, b64=False, jsonp_index=None):
    if packets is not None and not any(p.binary for p in packets):
        b64 = True
    return _engineio_ok(self, packets, headers, b64, jsonp_index)


engineio.server.Server._ok = _ok_like_node

# Node's engine.io answers the handshake poll with the OPEN packet alone: socket.io's CONNECT
# (`40`) is queued after it and reaches the client over the websocket once upgraded (the
# robot's handshake parser accepts nothing but the OPEN packet, and it reads that `40` as the
# first event after `joinChannel`). python-engineio would put both in the first poll.
_engineio_poll = engineio.asyncio_socket.AsyncSocket.poll


async def _poll_like_node(self):
    if not getattr(self, "_standin_opened", False):
        self._standin_opened = True
        first = await asyncio.wait_for(self.queue.get(), self.server.ping_timeout)
        self.queue.task_done()
        return [first] if first is not None else []
    return await _engineio_poll(self)


engineio.asyncio_socket.AsyncSocket.poll = _poll_like_node


def now_ms():
    return int(time.time() * 1000)


def subject_token(name):
    """The bridge's subject normalisation (01-wire.md §1)."""
    t = name.lower().replace(".", "").replace(" ", "-")
    for ch in "*>!@#$%^&*()+=[]{|}\\:;\"'<>,?/":
        t = t.replace(ch, "")
    return t[:100]


def emote(name, image):
    # CyTube's match rule: the name as a whole whitespace-delimited token.
    return {"name": name, "image": image, "source": "(^|\\s)" + re.escape(name) + "(?!\\S)"}


def user(name, rank, afk=False):
    return {
        "name": name,
        "rank": rank,
        "profile": {"image": "", "text": ""},
        "meta": {"afk": afk, "muted": False},
    }


def media(mid, title, seconds, mtype):
    return {
        "id": mid,
        "title": title,
        "seconds": seconds,
        "duration": time.strftime("%H:%M:%S", time.gmtime(seconds)).lstrip("0:") or "0",
        "type": mtype,
        "meta": {},
    }


TRAILER = media("Y5Zxj7sOYG8", "Grindhouse (2007) Trailer", 152, "yt")
FILM = media("https://example.org/cm/planet-terror.json", "Planet Terror", 6300, "cm")
PLAYLIST = [
    {"media": TRAILER, "uid": 101, "temp": False, "queueby": "alice"},
    {"media": FILM, "uid": 102, "temp": False, "queueby": "bob"},
]


class Channel:
    """One CyTube channel with one connected client: the robot."""

    def __init__(self, args, sio):
        self.args = args
        self.sio = sio
        self.sid = None
        self.logged_in = asyncio.Event()
        self.current = TRAILER
        self.current_uid = 101
        self.started_ms = now_ms()
        self.users = [
            user(args.bot, 3),
            user("alice", 2),
            user("bob", 1),
            user("carol", 1),
            user("dave", 1, afk=True),
            user("erin", 1),
        ]
        self.emotes = [
            emote("catJAM", "https://example.org/e/catjam.gif"),
            emote("PogChamp", "https://example.org/e/pog.png"),
            emote("LUL", "https://example.org/e/lul.png"),
        ]

    def change_media(self):
        # currentTime moves on as the media plays: a repeated changeMedia is not byte-identical.
        m = dict(self.current)
        m.update({"currentTime": round((now_ms() - self.started_ms) / 1000, 1), "paused": False})
        return m

    async def emit(self, event, data=None):
        log.info("emit %s", event)
        # Straight to the one client: python-socketio 4's room emit hands bare coroutines to
        # asyncio.wait, which Python 3.11 refuses.
        await self.sio._emit_internal(self.sid, event, data, "/")

    def chat(self, username, msg, at_ms, **meta):
        return ("chatMsg", {"username": username, "msg": msg, "meta": meta, "time": at_ms})


class Watcher:
    """Counts the envelopes the robot publishes for the channel, by event name."""

    def __init__(self):
        self.seen = {}
        self.changed = asyncio.Event()

    async def on_message(self, msg):
        try:
            name = json.loads(msg.data)["event_name"]
        except (ValueError, KeyError, TypeError):
            return
        self.seen[name] = self.seen.get(name, 0) + 1
        self.changed.set()

    async def wait_for(self, expected, timeout):
        deadline = time.monotonic() + timeout
        while any(self.seen.get(k, 0) < n for k, n in expected.items()):
            left = deadline - time.monotonic()
            if left <= 0:
                missing = {k: (self.seen.get(k, 0), n) for k, n in expected.items() if self.seen.get(k, 0) < n}
                raise TimeoutError(f"the robot did not publish (seen, expected): {missing}")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), min(left, 1.0))
            except asyncio.TimeoutError:
                pass


def join_burst(ch, t0):
    """What CyTube sends a client that joins the channel (before it logs in): options,
    emotes, the chat buffer (replayed with its original times), the playlist, what is
    playing, the userlist and the user count."""
    a = ch.args
    return [
        ("setPermissions", {"seeplaylist": -1, "playlistadd": 1, "chat": 0}),
        ("channelOpts", {"allow_voteskip": True, "afk_timeout": 600, "pagetitle": a.channel}),
        ("channelCSSJS", {"css": "", "js": ""}),
        ("setMotd", "Welcome to " + a.channel),
        ("emoteList", ch.emotes),
        # The chat buffer: ten minutes old, before anything the robot ever saw.
        ch.chat("alice", "evening all", t0 - 600_000),
        ch.chat("bob", "alice++ for the popcorn catJAM", t0 - 590_000),
        ch.chat("[server]", "carol joined (aliases: carol)", t0 - 585_000),
        ch.chat("carol", "lol bob", t0 - 580_000),
        ("playlist", PLAYLIST),
        ("setPlaylistMeta", {"count": 2, "rawTime": 6452, "time": "01:47:32"}),
        ("setCurrent", 101),
        ("changeMedia", ch.change_media()),
        ("userlist", ch.users),
        ("usercount", 7),
    ]


def scenario(ch, bot):
    """The steps after login. Each is a function of the step's start time returning the
    events to send; see tests/bridge/README.md for the numbers they must give."""

    def live_chat(t):
        return [
            ch.chat("alice", "catJAM catJAM hi bob", t),
            ch.chat("bob", "this trailer rules movie++", t + 1),
            ch.chat("carol", "lol alice", t + 2),
            ch.chat(bot, "Now playing: Grindhouse (2007) Trailer", t + 3),
            ("mediaUpdate", {"currentTime": 30.5, "paused": False}),
        ]

    def second_media(t):
        ch.current, ch.current_uid = FILM, 102
        # As CyTube does on a change: setCurrent then changeMedia; then the same pair again
        # (a moderator's "play next" on the item already playing sends both once more).
        return [
            ("setCurrent", 102),
            ("changeMedia", ch.change_media()),
            ("mediaUpdate", {"currentTime": 0.5, "paused": False}),
            ("setCurrent", 102),
            ("changeMedia", ch.change_media()),
        ]

    def votes(t):
        return [
            ch.chat("alice", "finally film++", t),
            ch.chat("erin", "meh movie--", t + 1),
            ch.chat("bob", "movie++", t + 2),
        ]

    def joins(t):
        frank = user("frank", 1)
        ch.users.append(frank)
        for u in ch.users:
            if u["name"] == "dave":
                u["meta"]["afk"] = False
        return [
            ("addUser", frank),
            ("usercount", 8),
            # dave comes back: CyTube sends setUserMeta first, then setAFK.
            ("setUserMeta", {"name": "dave", "meta": {"afk": False, "muted": False}}),
            ("setAFK", {"name": "dave", "afk": False}),
            ch.chat("frank", "hi all, carol++ PogChamp", t),
        ]

    def emote_edits(t):
        return [
            ("updateEmote", emote("PogChamp", "https://example.org/e/pog2.png")),
            ("updateEmote", emote("monkaS", "https://example.org/e/monkas.png")),
            ("renameEmote", {"old": "catJAM", **emote("catDISCO", "https://example.org/e/catjam.gif")}),
            ("removeEmote", {"name": "LUL"}),
        ]

    def emote_chat(t):
        return [ch.chat("alice", "catDISCO monkaS catJAM LUL", t)]

    def leave_and_resend(t):
        ch.users = [u for u in ch.users if u["name"] not in ("frank", "erin")]
        # frank leaves properly; erin vanishes without a userLeave (she was gone while the
        # robot was not looking): only the resent full userlist says so.
        return [
            ("userLeave", {"name": "frank"}),
            ("usercount", 7),
            ("userlist", ch.users),
            ("usercount", 6),
        ]

    def more_chat(t):
        return [
            ch.chat("dave", "lol erin where did she go", t),
            ch.chat("bob", "alice++ bob++", t + 1),
        ]

    return [
        ("live_chat", live_chat),
        ("second_media", second_media),
        ("votes", votes),
        ("joins", joins),
        ("emote_edits", emote_edits),
        ("emote_chat", emote_chat),
        ("leave_and_resend", leave_and_resend),
        ("more_chat", more_chat),
    ]


def count(events):
    out = {}
    for name, _ in events:
        out[name] = out.get(name, 0) + 1
    return out


def make_cert(directory):
    cert, key = os.path.join(directory, "standin-cert.pem"), os.path.join(directory, "standin-key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", key, "-out", cert],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return cert, key


def say(obj):
    print(json.dumps(obj), flush=True)


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--https-port", type=int, required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--nats", required=True)
    p.add_argument("--channel", required=True)
    p.add_argument("--bot", required=True)
    p.add_argument("--step-timeout", type=float, default=60.0)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")

    sio = socketio.AsyncServer(async_mode="aiohttp", logger=False, engineio_logger=False)
    ch = Channel(args, sio)
    joined = asyncio.Event()

    @sio.event
    async def connect(sid, environ):
        log.info("client connected: %s", sid)
        ch.sid = sid

    @sio.event
    async def disconnect(sid):
        log.info("client disconnected: %s", sid)

    @sio.on("joinChannel")
    async def join_channel(sid, data):
        log.info("joinChannel %s", data)
        if not isinstance(data, dict) or data.get("name") != args.channel:
            await ch.emit("errorMsg", {"msg": "No such channel"})
            return
        ch.sid = sid
        for event, payload in join_burst(ch, now_ms()):
            await ch.emit(event, payload)
        joined.set()

    @sio.on("login")
    async def login(sid, data):
        log.info("login %s", {k: v for k, v in (data or {}).items() if k != "pw"})
        name = (data or {}).get("name") or "Guest"
        await ch.emit("login", {"success": True, "name": name, "guest": "pw" not in (data or {})})
        await ch.emit("rank", 3)
        ch.logged_in.set()

    @sio.on("playerReady")
    async def player_ready(sid, data):
        await ch.emit("changeMedia", ch.change_media())

    @sio.on("requestPlaylist")
    async def request_playlist(sid, data):
        await ch.emit("playlist", PLAYLIST)

    async def socketconfig(request):
        if request.match_info["channel"] != args.channel + ".json":
            raise web.HTTPNotFound()
        return web.json_response({"servers": [{"url": f"http://127.0.0.1:{http_port}", "secure": False}]})

    app = web.Application()
    app.router.add_get("/socketconfig/{channel}", socketconfig)
    sio.attach(app)
    runner = web.AppRunner(app)
    await runner.setup()
    plain = web.TCPSite(runner, "127.0.0.1", 0)
    await plain.start()
    http_port = runner.addresses[0][1]  # the only site so far
    cert, key = make_cert(args.dir)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    await web.TCPSite(runner, "127.0.0.1", args.https_port, ssl_context=tls).start()

    watcher = Watcher()
    nc = await nats.connect(args.nats)
    await nc.subscribe(f"kryten.events.cytube.{subject_token(args.channel)}.>", cb=watcher.on_message)
    await nc.flush()
    say({"listening": {"https": args.https_port, "http": http_port, "cert": cert}})

    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)

    await asyncio.wait_for(joined.wait(), 120)
    await asyncio.wait_for(ch.logged_in.wait(), 60)
    # Everything sent at join and login (the robot's own read after joinChannel, looking for
    # `needPassword`, takes socket.io's CONNECT packet, as with the real CyTube).
    expected = count(join_burst(ch, 0))
    expected["changeMedia"] += 1  # the answer to playerReady
    expected["login"] = 1
    expected["rank"] = 1
    await watcher.wait_for(expected, args.step_timeout)
    say({"step": "join", "events": sum(expected.values())})

    for name, make in scenario(ch, args.bot):
        if not await stdin.readline():
            return
        # A few ms so that this step's times are strictly after the last envelope's.
        await asyncio.sleep(0.01)
        events = make(now_ms())
        for event, payload in events:
            await ch.emit(event, payload)
        for k, n in count(events).items():
            expected[k] = expected.get(k, 0) + n
        await watcher.wait_for(expected, args.step_timeout)
        say({"step": name, "events": len(events)})

    say({"done": True, "published": watcher.seen})
    await stdin.read()  # until the test closes stdin (or kills us)
    await nc.close()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
