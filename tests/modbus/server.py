#!/usr/bin/env python3
"""A pymodbus server as the independent peer of tests/tests/modbus_interop.rs.

Serves the same register map (below) for each unit id given with --units, on one of:
  --tcp HOST:PORT              Modbus TCP (PORT 0: the OS picks one; it is printed)
  --tcp HOST:PORT --rtu        RTU framing (with CRC) over TCP, as serial device servers do
  --serial /path/to/tty        Modbus RTU on a serial line (e.g. one end of a socat pty pair)

--late-once UNIT:ADDRESS:SECONDS answers the first read of that holding register late, as a
slow device does after the master has given up waiting (a SimDevice action).

With --exit-on-stdin-eof, lines on standard input change its behaviour while it runs (each is
acknowledged with `OK <line>` on stderr once in force):
  stop        every read of every unit answers exception 02, as a PLC in STOP does
  run         normal answers again
  unplug U    unit U gets no answer at all (as if its cable were pulled)
  plug U      unit U answers again

Prints `PORT <n>` (TCP only) and then `READY` on stdout once it listens. With
--exit-on-stdin-eof it exits as soon as its standard input closes, so it never outlives the
test that started it, even one killed with SIGKILL.

Unit ids not in --units get NO answer, like on a real RS-485 line where nobody has that address
(pymodbus itself answers them with exception 04 "server device failure"; the filter is
`trace` below, through pymodbus's `trace_pdu` hook, which also logs every exception answer to
stderr as `EXCEPTION unit=<id> function=<code> code=<exception>`). With --gateway they are
answered with exception 0x0B "gateway target device failed to respond" instead, as a Modbus TCP
to RTU gateway does for a unit id that is silent on its serial line.

The register map of unit u (protocol addresses, 0-based). Values are encoded by pymodbus's own
`convert_to_registers` (word_order "little" is CDAB; pymodbus has no byte swap inside a
register, so BADC and DCBA are its ABCD and CDAB registers with the two bytes of each swapped, as
in vectors.py); tests/tests/modbus_interop.rs expects exactly these values:

  holding  0       INT16          -(100*u + 23)
  holding  1..2    UINT32  CDAB   3_000_000_000 + u
  holding  3..4    FLOAT32 CDAB   [123.456, -273.15, 0.001][u-1 mod 3]
  holding  5..9    HOLE: not defined, so any read touching it answers exception 02
  holding  10      UINT16         40000 + u
  holding  11      UINT16         --generation (1 unless given; a restarted server shows fresh data)
  input    0..1    FLOAT32 ABCD   230.25 + u
  input    2..5    INT64   ABCD   -(2**40) - u
  input    6..9    STRING         "SN%06d" % u   (8 characters, 4 registers)
  input    10..11  FLOAT32 BADC   1013.25 + u
  input    12..13  INT32   DCBA   -(100_000*u + 7)
  coil     0..7    i is on when (i + u) % 3 == 0
  discrete 0..7    i is on when (i % 2 == 1) != (u == 2)

The datastore is pymodbus's SimDevice with separate tables; addresses between two SimData
entries are marked invalid by SimDevice (pymodbus/simulator/simdevice.py, __create_block) and
SimRuntime answers ExcCodes.ILLEGAL_ADDRESS (02) for a read touching one, or reaching past the
last entry (pymodbus/simulator/simruntime.py, get_reg_block / __check_block).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading

from pymodbus import FramerType
from pymodbus.client.mixin import ModbusClientMixin
from pymodbus.constants import ExcCodes
from pymodbus.pdu import ExceptionResponse
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

DT = ModbusClientMixin.DATATYPE
FLOATS = [123.456, -273.15, 0.001]

# What the commands on standard input change (read by the asyncio loop, written by the stdin
# thread; single assignments and set updates are atomic under the GIL).
CONTROL: dict = {"stop": False, "unplugged": set()}


def regs(value, data_type, word_order: str = "big") -> list[int]:
    """Registers of a value, by pymodbus's encoder ("big" = ABCD, "little" = CDAB)."""
    return ModbusClientMixin.convert_to_registers(value, data_type, word_order=word_order)


def swap_bytes(registers: list[int]) -> list[int]:
    """The two bytes of every register swapped: ABCD -> BADC, CDAB -> DCBA."""
    return [((r & 0xFF) << 8) | (r >> 8) for r in registers]


def block(address: int, registers: list[int]) -> SimData:
    return SimData(address, values=registers, datatype=DataType.REGISTERS)


def answer_late_once(address: int, seconds: float):
    """A SimDevice action: the first read of holding register `address` is answered `seconds`
    late (after the master gave up), every later one at once."""
    left = [1]

    async def action(function_code, _start, request_address, _count, _registers, _values):
        if function_code == 3 and request_address == address and left[0]:
            left[0] -= 1
            await asyncio.sleep(seconds)
        return None

    return action


def device(unit: int, generation: int, late: tuple[int, float] | None = None) -> SimDevice:
    holding = [
        block(0, regs(-(100 * unit + 23), DT.INT16)),
        block(1, regs(3_000_000_000 + unit, DT.UINT32, "little")),
        block(3, regs(FLOATS[(unit - 1) % 3], DT.FLOAT32, "little")),
        # 5..9: the hole.
        block(10, [40000 + unit, generation]),
    ]
    inputs = [
        block(0, regs(230.25 + unit, DT.FLOAT32)),
        block(2, regs(-(2**40) - unit, DT.INT64)),
        block(6, regs(f"SN{unit:06d}", DT.STRING)),
        block(10, swap_bytes(regs(1013.25 + unit, DT.FLOAT32))),
        block(12, swap_bytes(regs(-(100_000 * unit + 7), DT.INT32, "little"))),
    ]
    coils = [SimData(0, values=[(i + unit) % 3 == 0 for i in range(8)], datatype=DataType.BITS)]
    discrete = [
        SimData(0, values=[(i % 2 == 1) != (unit == 2) for i in range(8)], datatype=DataType.BITS)
    ]
    late_action = answer_late_once(*late) if late else None

    async def action(*args):
        if CONTROL["stop"]:
            return ExcCodes.ILLEGAL_ADDRESS
        return await late_action(*args) if late_action else None
    # Separate tables: (coils, discrete inputs, holding registers, input registers); coils and
    # discrete inputs are then addressed per bit.
    return SimDevice(unit, simdata=(coils, discrete, holding, inputs), action=action)


def absent_behind_gateway() -> SimDevice:
    """Unit id 0 of SimDevice catches every unit id not defined: a gateway's answer for them."""

    async def action(*_args):
        return ExcCodes.GATEWAY_NO_RESPONSE

    everything = SimData(0, count=65536, values=0, datatype=DataType.REGISTERS)
    return SimDevice(0, simdata=[everything], action=action)


def trace(units: set[int], drop_unknown: bool):
    """A trace_pdu hook. Logs every exception answer to stderr as
    `EXCEPTION unit=<id> function=<code> code=<exception>`, and with `drop_unknown` drops a
    request for a unit id nobody has, unanswered."""

    def trace_pdu(sending: bool, pdu):
        if not sending and drop_unknown and pdu.dev_id not in units:
            return None
        if not sending and pdu.dev_id in CONTROL["unplugged"]:
            return None
        if sending and isinstance(pdu, ExceptionResponse):
            print(
                f"EXCEPTION unit={pdu.dev_id} function={pdu.function_code & 0x7F}"
                f" code={pdu.exception_code}",
                file=sys.stderr,
                flush=True,
            )
        return pdu

    return trace_pdu


def command(line: str) -> None:
    """Applies one command read from standard input (see the module doc)."""
    words = line.split()
    if words == ["stop"]:
        CONTROL["stop"] = True
    elif words == ["run"]:
        CONTROL["stop"] = False
    elif len(words) == 2 and words[0] == "unplug":
        CONTROL["unplugged"].add(int(words[1]))
    elif len(words) == 2 and words[0] == "plug":
        CONTROL["unplugged"].discard(int(words[1]))
    else:
        print(f"UNKNOWN COMMAND {line!r}", file=sys.stderr, flush=True)
        return
    print(f"OK {line}", file=sys.stderr, flush=True)


def exit_on_stdin_eof() -> None:
    def watch() -> None:
        try:
            for raw in sys.stdin.buffer:
                line = raw.decode(errors="replace").strip()
                if line:
                    command(line)
        finally:
            os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


async def serve(args: argparse.Namespace) -> None:
    units = [int(u) for u in args.units.split(",")]
    late = {}
    for spec in args.late_once or []:
        unit, address, seconds = spec.split(":")
        late[int(unit)] = (int(address), float(seconds))
    devices = [device(u, args.generation, late.get(u)) for u in units]
    hook = trace(set(units), drop_unknown=not args.gateway)
    if args.gateway:
        devices.append(absent_behind_gateway())
    await run_server(devices, hook, args)


def add_listen_arguments(p: argparse.ArgumentParser) -> None:
    """--tcp HOST:PORT [--rtu] | --serial TTY [--baudrate N], and --exit-on-stdin-eof."""
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--tcp", metavar="HOST:PORT")
    where.add_argument("--serial", metavar="TTY")
    p.add_argument("--rtu", action="store_true", help="RTU framing over TCP")
    p.add_argument("--baudrate", type=int, default=9600)
    p.add_argument("--exit-on-stdin-eof", action="store_true")


async def run_server(devices: list[SimDevice], hook, args: argparse.Namespace) -> None:
    """Serves `devices` where `args` says (add_listen_arguments), prints `PORT <n>` (TCP) and
    `READY`, and runs until the process ends."""
    if args.serial:
        server = ModbusSerialServer(
            devices,
            framer=FramerType.RTU,
            port=args.serial,
            baudrate=args.baudrate,
            trace_pdu=hook,
        )
    else:
        host, _, port = args.tcp.rpartition(":")
        server = ModbusTcpServer(
            devices,
            framer=FramerType.RTU if args.rtu else FramerType.SOCKET,
            address=(host, int(port)),
            trace_pdu=hook,
        )
    await server.serve_forever(background=True)
    if not args.serial:
        print(f"PORT {server.transport.sockets[0].getsockname()[1]}")
    print("READY", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_listen_arguments(p)
    p.add_argument("--units", default="1", help="comma-separated unit ids (default 1)")
    p.add_argument("--generation", type=int, default=1, help="value of holding register 11")
    p.add_argument(
        "--gateway",
        action="store_true",
        help="answer unit ids not in --units with exception 0x0B, as a TCP/RTU gateway does",
    )
    p.add_argument(
        "--late-once",
        action="append",
        metavar="UNIT:ADDRESS:SECONDS",
        help="answer the first read of holding ADDRESS of UNIT that many seconds late",
    )
    args = p.parse_args()
    if args.exit_on_stdin_eof:
        exit_on_stdin_eof()
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
