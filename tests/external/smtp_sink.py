"""SMTP sink for the mail delivery tests: an aiosmtpd server that writes every message it receives to a directory.

Usage: python smtp_sink.py --dir DIR [--port PORT] [--host 127.0.0.1]

Each message is written as DIR/<n>.eml (the DATA as received), first under a
temporary name then renamed, so a reader never sees half a file; n goes on
from the highest number already in DIR, so a restarted sink adds files. A JSON line
per message goes to DIR/envelopes.jsonl (sender, recipients). When the server
accepts connections, one line `PORT <port>` is printed on standard output.
The server stops when standard input closes or on SIGTERM/SIGINT.
"""

import argparse
import itertools
import json
import os
import signal
import socket
import sys
import threading

from aiosmtpd.controller import Controller


class DirectoryHandler:
    def __init__(self, directory):
        self.directory = directory
        existing = [
            int(name[: -len(".eml")])
            for name in os.listdir(directory)
            if name.endswith(".eml") and name[: -len(".eml")].isdigit()
        ]
        self.counter = itertools.count(max(existing, default=0) + 1)
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            n = next(self.counter)
            temporary = os.path.join(self.directory, f".{n}.tmp")
            with open(temporary, "wb") as f:
                f.write(envelope.original_content or envelope.content)
            os.replace(temporary, os.path.join(self.directory, f"{n}.eml"))
            with open(os.path.join(self.directory, "envelopes.jsonl"), "a") as f:
                record = {"n": n, "from": envelope.mail_from, "to": envelope.rcpt_tos}
                f.write(json.dumps(record) + "\n")
        return "250 Message accepted for delivery"


def free_port(host):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    os.makedirs(args.dir, exist_ok=True)
    port = args.port or free_port(args.host)
    controller = Controller(
        DirectoryHandler(args.dir),
        hostname=args.host,
        port=port,
        ready_timeout=10,
    )
    controller.start()
    print(f"PORT {port}", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def wait_for_stdin_eof():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except (OSError, ValueError):
            pass
        stop.set()

    threading.Thread(target=wait_for_stdin_eof, daemon=True).start()
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
