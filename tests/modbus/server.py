"""A Modbus TCP device for fleetcare's end-to-end tests (tests/modbus.rs).

    python server.py '{"port": 0, "unit": 1,
                       "input": {"0": [1, 57920]}, "holding": {"200": [5]}}'

Serves the given input and holding registers (zero-based protocol addresses,
exactly as they go on the wire) for one unit id; any other address answers
exception 02 (illegal data address). Prints `PORT <n>` on stdout once it
listens, so the test binds port 0 and reads the port instead of guessing a
free one. Exits when stdin closes, so a test that dies leaves no server
behind.
"""

import asyncio
import json
import logging
import os
import sys
import threading

from pymodbus import pymodbus_apply_logging_config
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice


def blocks(spec):
    """SimData blocks for {"address": [words...]}: one block per run. An
    empty table gets one invalid register, as pymodbus wants a block in
    every table: reading it still answers exception 02."""
    if not spec:
        return [SimData(0, datatype=DataType.INVALID)]
    return [
        SimData(int(address), values=list(words), datatype=DataType.REGISTERS)
        for address, words in sorted(spec.items(), key=lambda kv: int(kv[0]))
    ]


def exit_when_stdin_closes():
    # os.read, not sys.stdin: a daemon thread blocked in a buffered read
    # holds its lock and makes interpreter shutdown abort.
    while os.read(0, 4096):
        pass
    os._exit(0)


async def main(spec):
    # pymodbus wants at least one block in every table; coils and discrete
    # inputs are not read by fleetcare.
    bit = [SimData(0, values=False, datatype=DataType.BITS)]
    device = SimDevice(
        id=spec.get("unit", 1),
        simdata=(bit, list(bit), blocks(spec.get("holding", {})), blocks(spec.get("input", {}))),
    )
    server = ModbusTcpServer(device, address=("127.0.0.1", spec.get("port", 0)))
    await server.serve_forever(background=True)
    port = server.transport.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    # Warnings and errors only: no packet trace in the test output.
    pymodbus_apply_logging_config(logging.WARNING)
    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    asyncio.run(main(json.loads(sys.argv[1])))
