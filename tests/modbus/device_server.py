#!/usr/bin/env python3
"""A transparent serial device server, as the independent peer of tests/tests/modbus_interop.rs.

What a Moxa NPort, a USR-TCP232 or ser2net does in "TCP server" mode, and what Markoff's
`transmission_mode = "RTUoverTCP"` talks to: it keeps a serial port open for good and relays
bytes, unchanged, between it and the TCP client connected at the time. A newer connection
replaces the older one. Bytes arriving from the line while no client is connected are dropped.
It knows nothing about Modbus: RTU frames pass through as they are, and so does a device's late
answer, to whichever client is connected when it arrives.

    device_server.py --serial /path/to/tty [--listen 127.0.0.1:0] [--exit-on-stdin-eof]

Prints `PORT <n>` and then `READY` on stdout once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading

import serial


class Relay:
    def __init__(self, tty: serial.Serial) -> None:
        self.tty = tty
        self.client: asyncio.StreamWriter | None = None

    def from_line(self) -> None:
        data = self.tty.read(self.tty.in_waiting or 1)
        if data and self.client is not None and not self.client.is_closing():
            self.client.write(data)
        elif data:
            print(f"dropped {len(data)} bytes: no client", file=sys.stderr, flush=True)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.client is not None:
            self.client.close()
        self.client = writer
        print("client connected", file=sys.stderr, flush=True)
        try:
            while data := await reader.read(4096):
                self.tty.write(data)
        except ConnectionError:
            pass
        finally:
            if self.client is writer:
                self.client = None
            writer.close()
            print("client gone", file=sys.stderr, flush=True)


def exit_on_stdin_eof() -> None:
    def watch() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        finally:
            os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


async def main(args: argparse.Namespace) -> None:
    tty = serial.Serial(args.serial, baudrate=9600, timeout=0)
    relay = Relay(tty)
    loop = asyncio.get_running_loop()
    loop.add_reader(tty.fileno(), relay.from_line)
    host, _, port = args.listen.rpartition(":")
    server = await asyncio.start_server(relay.serve, host, int(port))
    print(f"PORT {server.sockets[0].getsockname()[1]}")
    print("READY", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--serial", required=True, metavar="TTY")
    p.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT")
    p.add_argument("--exit-on-stdin-eof", action="store_true")
    cli = p.parse_args()
    if cli.exit_on_stdin_eof:
        exit_on_stdin_eof()
    asyncio.run(main(cli))
