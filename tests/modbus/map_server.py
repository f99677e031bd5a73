#!/usr/bin/env python3
"""A pymodbus server that serves a register map read from a TOML file, as the independent peer
of the import tests (tests/tests/modbus_interop/import.rs): each imported Telegraf or ThingsBoard
config is polled against the values its map describes.

    map_server.py --map FILE (--tcp HOST:PORT [--rtu] | --serial TTY) [--exit-on-stdin-eof]

The map (the [[register]] tables of FILE; other tables are ignored):

    [[register]]
    unit = 1               # unit id
    table = "holding"      # holding, input, coil, discrete
    address = 0            # protocol address, from 0
    type = "INT32"         # a pymodbus DATATYPE name (INT16 ... FLOAT64, STRING), FLOAT16, or
                           # BYTES (value = [high, low, ...]: the bytes as they go on the wire)
    order = "CDAB"         # ABCD (default), CDAB, BADC, DCBA
    value = -123456        # coils and discrete inputs: true/false, or a list of them

Registers are made by pymodbus's own encoder, `convert_to_registers`: word_order "little" for
CDAB and DCBA; pymodbus has no byte swap, so BADC and DCBA swap the two bytes of each register of
its output (the definition of those orders). FLOAT16 is Python's struct "e" (IEEE 754 half).
STRING is never word-swapped (devices keep characters in order); BADC and DCBA swap its bytes.
Every table is defined from address 0 to its last entry (unset registers read 0), so any read
inside it is answered. Unit ids not in the map get no answer, as on a real line.

Prints `PORT <n>` (TCP only) and then `READY` on stdout once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import struct
import tomllib

from pymodbus.client.mixin import ModbusClientMixin
from pymodbus.simulator import DataType, SimData, SimDevice

from server import add_listen_arguments, exit_on_stdin_eof, run_server, trace

DT = ModbusClientMixin.DATATYPE


def swap(register: int) -> int:
    return ((register & 0xFF) << 8) | (register >> 8)


def registers(entry: dict) -> list[int]:
    kind, order, value = entry["type"], entry.get("order", "ABCD"), entry["value"]
    if kind == "BYTES":
        return [(value[i] << 8) | value[i + 1] for i in range(0, len(value), 2)]
    if kind == "FLOAT16":
        regs = [struct.unpack(">H", struct.pack(">e", value))[0]]
    elif kind == "STRING":
        regs = ModbusClientMixin.convert_to_registers(value, DT.STRING)
    else:
        word_order = "little" if order in ("CDAB", "DCBA") else "big"
        regs = ModbusClientMixin.convert_to_registers(value, DT[kind], word_order=word_order)
    if order in ("BADC", "DCBA"):
        regs = [swap(r) for r in regs]
    return regs


def devices(entries: list[dict]) -> list[SimDevice]:
    units: dict[int, dict[str, dict[int, int | bool]]] = {}
    for e in entries:
        tables = units.setdefault(e["unit"], {"coil": {}, "discrete": {}, "holding": {}, "input": {}})
        table = tables[e["table"]]
        if e["table"] in ("coil", "discrete"):
            bits = e["value"] if isinstance(e["value"], list) else [e["value"]]
            for i, b in enumerate(bits):
                table[e["address"] + i] = bool(b)
        else:
            for i, r in enumerate(registers(e)):
                table[e["address"] + i] = r

    def block(table: dict[int, int | bool], bits: bool) -> list[SimData]:
        if not table:
            table = {0: False if bits else 0}
        values = [table.get(a, False if bits else 0) for a in range(max(table) + 1)]
        return [SimData(0, values=values, datatype=DataType.BITS if bits else DataType.REGISTERS)]

    return [
        SimDevice(
            unit,
            simdata=(
                block(t["coil"], True),
                block(t["discrete"], True),
                block(t["holding"], False),
                block(t["input"], False),
            ),
        )
        for unit, t in sorted(units.items())
    ]


async def serve(args: argparse.Namespace) -> None:
    with open(args.map, "rb") as f:
        entries = tomllib.load(f).get("register", [])
    await run_server(devices(entries), trace({e["unit"] for e in entries}, drop_unknown=True), args)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--map", required=True)
    add_listen_arguments(p)
    args = p.parse_args()
    if args.exit_on_stdin_eof:
        exit_on_stdin_eof()
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
