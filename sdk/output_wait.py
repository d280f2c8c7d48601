"""The Pulumi Python SDK's last step of a program, without its quadratic cost.

Once the program's body has run, the SDK waits for every Output still pending
(`pulumi.runtime.stack.wait_for_rpcs`). In the pinned SDK it does so with `asyncio.wait(...,
FIRST_COMPLETED)` in a loop: each time one of the N pending outputs resolves, it hooks a
callback onto all N again and then unhooks it from all N. Every property of every resource is an
Output (a container has some seventy), so for this platform's 230-odd resources that loop was
half the CPU of the program's process: 15.4 s -> 8.0 s for a dev `up` and three previews
(`python -m benchmarks.program_cpu`; docs/benchmarks.md).

`wait_for_rpcs` below does what the SDK's does, in the same order, for the same outputs, raising
the same errors, but waits for each snapshot of pending outputs once, until all of it is done or
one output fails (FIRST_EXCEPTION). `install()` puts it in place only over the exact function it
was written against (the digest of its source): any other SDK version keeps its own function,
and tests/unit/sdk/test_output_wait.py fails until this module is checked against it again.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from pulumi import log
from pulumi.runtime import stack as sdk_stack
from pulumi.runtime.settings import SETTINGS, _get_rpc_manager

REPLACED_SOURCE_SHA256 = "c0f9027f85ad09255ded0a1908033b490f76d303a3e40b50d3cf47a69265469d"
"""The digest of the SDK's `wait_for_rpcs` this replaces (pulumi 3.272.0)."""


SdkWait = Callable[..., Coroutine[Any, Any, None]]

_sdk_own: SdkWait | None = None
"""The SDK's function, once `install()` replaced it."""


def sdk_function() -> SdkWait:
    """The SDK's own wait, whether replaced or not."""
    current: SdkWait = sdk_stack.wait_for_rpcs
    return _sdk_own if current is wait_for_rpcs and _sdk_own is not None else current


def source_digest(function: SdkWait) -> str:
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()


def install() -> bool:
    """Replace the SDK's wait when it is the one this module was written against; says whether
    it did. Call it before the program's body runs (the SDK looks the function up when the body
    has run). Installing twice is harmless; a function in its place that is neither the SDK's
    known one nor this module's is left alone."""
    global _sdk_own
    current: SdkWait = sdk_stack.wait_for_rpcs
    if current is wait_for_rpcs:
        return True
    if source_digest(current) != REPLACED_SOURCE_SHA256:
        return False
    _sdk_own = current
    sdk_stack.wait_for_rpcs = wait_for_rpcs
    return True


async def wait_for_rpcs(await_all_outstanding_tasks: bool = True) -> None:
    """Until no RPC and (unless told otherwise) no Output is pending, re-raising the first
    failure, as the SDK's own does."""
    log.debug("Waiting for outstanding RPCs to complete")
    rpc_manager = _get_rpc_manager()
    while True:
        # Each RPC awaited in turn, the event loop pumped before each, as the SDK does.
        while rpc_manager.rpcs:
            await asyncio.sleep(0)
            try:
                await rpc_manager.rpcs.pop()
            except Exception as exn:
                if rpc_manager.unhandled_exception is not None:
                    cause = rpc_manager.unhandled_exception.with_traceback(
                        rpc_manager.exception_traceback
                    )
                    raise exn from cause
                raise
        if rpc_manager.unhandled_exception is not None:
            raise rpc_manager.unhandled_exception.with_traceback(rpc_manager.exception_traceback)
        log.debug("RPCs successfully completed")
        if await_all_outstanding_tasks:
            await _every_pending_output()
            log.debug("All outstanding outputs completed.")
        # Outputs that resolved may have made new RPCs: round again until none is left.
        if not rpc_manager.rpcs:
            break


async def _every_pending_output() -> None:
    """Every tracked Output's task awaited; outputs made meanwhile are picked up next round."""
    while True:
        with SETTINGS.lock:
            if not SETTINGS.outputs:
                return
            pending = list(SETTINGS.outputs)
            SETTINGS.outputs.clear()
        # Once per snapshot, not once per output that resolves: this is the whole change.
        done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
        # A failed output stops the wait: awaiting it raises its error, as in the SDK.
        for task in done:
            await task
