"""sdk/output_wait.py: the SDK's final wait for pending outputs, replaced only over the
function it was written against, awaiting the same outputs and raising the same errors, once
per snapshot of them instead of once per output that resolves."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from pulumi.runtime import stack as sdk_stack
from pulumi.runtime.settings import SETTINGS, _get_rpc_manager

from sdk import output_wait

SDK_WAIT = output_wait.sdk_function()
Wait = Callable[[], Awaitable[None]]


@pytest.fixture(autouse=True)
def clean_runtime() -> Iterator[None]:
    """No pending RPC or output left by other tests (the SDK's own reset, as its mocks do), and
    the SDK's own function back afterwards."""
    _get_rpc_manager().clear()
    SETTINGS.outputs.clear()
    # A test that ran the program may have installed the replacement already.
    before, sdk_stack.wait_for_rpcs = sdk_stack.wait_for_rpcs, SDK_WAIT
    yield
    _get_rpc_manager().clear()
    SETTINGS.outputs.clear()
    sdk_stack.wait_for_rpcs = before


def test_it_replaces_the_pinned_sdks_function_once() -> None:
    assert output_wait.source_digest(SDK_WAIT) == output_wait.REPLACED_SOURCE_SHA256, (
        "the Pulumi SDK's wait_for_rpcs changed: compare it with sdk/output_wait.py, "
        "then update REPLACED_SOURCE_SHA256 (or drop the module if the SDK fixed the cost)"
    )
    assert output_wait.install()
    assert sdk_stack.wait_for_rpcs is output_wait.wait_for_rpcs
    assert output_wait.install()
    assert sdk_stack.wait_for_rpcs is output_wait.wait_for_rpcs


def test_another_sdks_function_is_left_alone() -> None:
    async def other(await_all_outstanding_tasks: bool = True) -> None:
        return None

    sdk_stack.wait_for_rpcs = other
    assert not output_wait.install()
    assert sdk_stack.wait_for_rpcs is other


def track(coroutine: Awaitable[Any]) -> asyncio.Future[Any]:
    """A pending output as the SDK tracks one (pulumi.Output._track)."""
    task = asyncio.ensure_future(coroutine)
    with SETTINGS.lock:
        SETTINGS.outputs.add(task)
    return task


STEPS_BETWEEN = 5
"""Turns of the event loop between two outputs resolving: counted turns, not time, so that how
the waits interleave does not depend on how busy the machine is."""


async def turns(count: int = STEPS_BETWEEN) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


async def outputs_in_waves(resolved: list[int], fail_at: int | None = None) -> asyncio.Task[None]:
    """Forty outputs resolving one by one, a few turns of the loop apart; each tenth makes a
    new one as it resolves (an `apply` of it), which resolves a few turns later."""
    gates = [asyncio.get_running_loop().create_future() for _ in range(40)]

    async def resolve(n: int) -> int:
        if n < len(gates):
            await gates[n]
        else:
            await turns()
        if n == fail_at:
            raise ValueError(f"output {n} failed")
        resolved.append(n)
        if n % 10 == 0 and n < 1000:
            track(resolve(n + 1000))
        return n

    async def open_gates() -> None:
        for gate in gates:
            await turns()
            gate.set_result(None)

    for n in range(40):
        track(resolve(n))
    # Not an output: what makes them resolve.
    return asyncio.ensure_future(open_gates())


async def cancel_every_task() -> None:
    others = asyncio.all_tasks() - {asyncio.current_task()}
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)


def run_wait(wait: Callable[..., Awaitable[None]], fail_at: int | None = None) -> list[int]:
    resolved: list[int] = []

    async def scenario() -> None:
        opener = await outputs_in_waves(resolved, fail_at)
        await wait()
        assert opener.done()

    # A loop of its own, never made the thread's current one: asyncio.run would leave the thread
    # without one, and the SDK's mocks in other tests ask for it.
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(scenario())
    finally:
        # After a failure the other outputs are still pending: end them before the loop.
        loop.run_until_complete(cancel_every_task())
        loop.close()
    return resolved


@pytest.mark.parametrize("wait", [SDK_WAIT, output_wait.wait_for_rpcs], ids=["sdk", "replaced"])
def test_every_output_is_awaited_also_those_made_while_waiting(
    wait: Callable[..., Awaitable[None]],
) -> None:
    resolved = run_wait(wait)
    assert sorted(resolved) == sorted([*range(40), 1000, 1010, 1020, 1030])
    assert not SETTINGS.outputs


@pytest.mark.parametrize("wait", [SDK_WAIT, output_wait.wait_for_rpcs], ids=["sdk", "replaced"])
def test_a_failed_output_raises_its_error(wait: Callable[..., Awaitable[None]]) -> None:
    with pytest.raises(ValueError, match="output 25 failed"):
        run_wait(wait, fail_at=25)


def test_it_waits_once_per_snapshot_where_the_sdk_waits_once_per_output(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = {"count": 0}
    real_wait = asyncio.wait

    async def counted(*args: Any, **kwargs: Any) -> Any:
        calls["count"] += 1
        return await real_wait(*args, **kwargs)

    monkeypatch.setattr(asyncio, "wait", counted)
    run_wait(SDK_WAIT)
    sdk_calls, calls["count"] = calls["count"], 0
    run_wait(output_wait.wait_for_rpcs)
    # The first snapshot, then the outputs made while it was awaited (and perhaps one more);
    # the SDK's waits again each time an output resolves.
    assert calls["count"] <= 3
    assert sdk_calls >= 20, sdk_calls
