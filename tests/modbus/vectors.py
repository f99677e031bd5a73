#!/usr/bin/env python3
"""Decode vectors made by pymodbus's encoder, for tests/tests/modbus_interop.rs.

Prints one JSON document on stdout:

    {"pymodbus": "3.16.1",
     "vectors": [{"type": "FLOAT32", "value": "123.456", "bits": "0x42f6e979",
                  "registers": {"ABCD": [...], "CDAB": [...], "BADC": [...], "DCBA": [...]}},
                 {"type": "INT64", "value": -1, "registers": {...}},
                 {"type": "STRING", "value": "SDM630", "text": "SDM630", "registers": {...}}, ...]}

FLOAT16 comes from Python's struct "e" (pymodbus has no half-precision type).

Integers are JSON integers (64-bit ones included: serde_json reads them exactly). Floats are given
as their IEEE 754 bit pattern ("bits", big-endian hex) so the comparison is bit-exact, -0.0, the
infinities and NaN included; "value" is only their Python repr, for messages.

Where the registers come from:
- ABCD is pymodbus's `convert_to_registers(value, type, word_order="big")`, CDAB the same with
  word_order="little" (pymodbus reverses the registers of each value: "word swap").
- pymodbus has no byte swap inside a register, so BADC and DCBA are DERIVED here from pymodbus's
  output by swapping the two bytes of every register: BADC = swap_bytes(ABCD) and
  DCBA = swap_bytes(CDAB). That is the definition of those orders (see daemon decode.rs), so
  the vectors stay independent of Markoff's own encoder.
- STRING: Markoff's decoder applies only the byte order to text (characters are never
  word-swapped), so ABCD and CDAB are both pymodbus's "big" registers and BADC and DCBA both
  their byte swap. pymodbus's word_order="little" for STRING reverses the whole register list,
  which no device does; it is not used. "text" is what a reader should show: the string with
  the trailing NULs (pymodbus's padding) and spaces removed, as Markoff does.
"""

from __future__ import annotations

import json
import math
import struct
import sys

import pymodbus
from pymodbus.client.mixin import ModbusClientMixin

DT = ModbusClientMixin.DATATYPE
convert = ModbusClientMixin.convert_to_registers

F32_MAX = struct.unpack(">f", bytes.fromhex("7f7fffff"))[0]
F32_MIN_SUBNORMAL = struct.unpack(">f", bytes.fromhex("00000001"))[0]

VALUES: dict[str, list] = {
    "INT16": [0, 1, -1, 215, -200, 12345, -12345, 32767, -32768],
    "UINT16": [0, 1, 0x1234, 0x8000, 40000, 65534, 65535],
    "INT32": [0, 1, -1, 123456789, -123456789, 0x01020304, 2**31 - 1, -(2**31)],
    "UINT32": [0, 1, 0x01020304, 65536, 3_000_000_000, 2**32 - 1],
    "INT64": [
        0,
        1,
        -1,
        -0x0102030405060708,
        2**53 + 1,  # not exact as an f64: the raw integer must still be exact
        -(2**53) - 1,
        2**63 - 1,
        -(2**63),
    ],
    "UINT64": [0, 1, 0x0102030405060708, 2**53 + 1, 2**63, 18_446_744_073_709_551_557, 2**64 - 1],
    "FLOAT32": [
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.1,
        123.456,
        -273.15,
        239.5,
        1e-3,
        F32_MIN_SUBNORMAL,
        F32_MAX,
        -F32_MAX,
        16777217.0,  # 2**24 + 1: rounds to 2**24 in f32
        math.inf,
        -math.inf,
        math.nan,
    ],
    "FLOAT64": [
        0.0,
        -0.0,
        1.0,
        0.1,
        123.456,
        -273.15,
        5e-324,
        2.2250738585072014e-308,
        1.7976931348623157e308,
        -1.7976931348623157e308,
        9007199254740993.0,
        math.inf,
        -math.inf,
        math.nan,
    ],
    "STRING": ["SDM630", "A", "abc", "Markoff gateway 1", "0123456789ABCDEF", "pad  "],
    "FLOAT16": [
        0.0,
        -0.0,
        1.0,
        -2.0,
        0.1,  # rounds to 0.0999755859375
        21.5,
        65504.0,
        -65504.0,
        2.0**-14,
        2.0**-24,  # the smallest subnormal
        0.333251953125,
        math.inf,
        -math.inf,
        math.nan,
    ],
}


def swap_bytes(registers: list[int]) -> list[int]:
    """The same registers with their two bytes exchanged (what BADC/DCBA add to ABCD/CDAB)."""
    return [((r & 0xFF) << 8) | (r >> 8) for r in registers]


def vector(type_name: str, value) -> dict:
    if type_name == "FLOAT16":
        # pymodbus has no half-precision type: Python's struct "e" (IEEE 754 binary16) encodes it,
        # one register, so word order changes nothing.
        half = [struct.unpack(">H", struct.pack(">e", value))[0]]
        return {
            "type": type_name,
            "value": repr(value),
            "bits": "0x" + struct.pack(">e", value).hex(),
            "registers": {"ABCD": half, "CDAB": half, "BADC": swap_bytes(half), "DCBA": swap_bytes(half)},
        }
    data_type = DT[type_name]
    big = convert(value, data_type, word_order="big")
    if type_name == "STRING":
        little = list(big)  # see the module docstring: text is never word-swapped
    else:
        little = convert(value, data_type, word_order="little")
    out: dict = {
        "type": type_name,
        "registers": {
            "ABCD": big,
            "CDAB": little,
            "BADC": swap_bytes(big),
            "DCBA": swap_bytes(little),
        },
    }
    if type_name == "FLOAT32":
        out["value"] = repr(value)
        out["bits"] = "0x" + struct.pack(">f", value).hex()
    elif type_name == "FLOAT64":
        out["value"] = repr(value)
        out["bits"] = "0x" + struct.pack(">d", value).hex()
    elif type_name == "STRING":
        out["value"] = value
        out["text"] = value.rstrip("\0 ")
    else:
        out["value"] = value
    return out


def main() -> None:
    vectors = [vector(t, v) for t, values in VALUES.items() for v in values]
    json.dump({"pymodbus": pymodbus.__version__, "vectors": vectors}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
