"""Micro-batching: concurrent requests share one model call.

Requests put their images on a queue; one worker takes what is waiting (up to ``max_batch``),
waits at most ``max_wait_ms`` for more, runs the model once in a worker thread (so the event
loop keeps accepting requests meanwhile) and hands each request its rows. While one batch
runs, the next one fills: under load, batches grow by themselves. ``max_batch=1`` is
one-request-at-a-time serving.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np


@dataclass
class _Item:
    x: np.ndarray               # (k, 1, 28, 28): one request's images
    future: asyncio.Future


@dataclass
class BatchResult:
    probs: np.ndarray           # (k, n_classes) for this request
    inference_s: float          # the model call that served it
    batch_size: int             # images in that call


class MicroBatcher:
    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], max_batch: int, max_wait_ms: float,
                 on_batch: Callable[[int, float], None] | None = None):
        if max_batch < 1:
            raise ValueError(f"max_batch = {max_batch}: must be >= 1")
        self.predict, self.max_batch, self.max_wait = predict, max_batch, max_wait_ms / 1000.0
        self.on_batch = on_batch
        self._queue: asyncio.Queue[_Item | None] | None = None
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        """Finish what is queued, then stop the worker."""
        if self._task is not None:
            await self._queue.put(None)
            await self._task
            self._task = None
        self._executor.shutdown(wait=True)

    async def submit(self, x: np.ndarray) -> BatchResult:
        if self._task is None:
            raise RuntimeError("the batcher is not running")
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Item(np.asarray(x, np.float32), future))
        return await future

    async def _collect(self, first: _Item) -> tuple[list[_Item], bool]:
        items, size, stop = [first], len(first.x), False
        deadline = asyncio.get_running_loop().time() + self.max_wait
        while size < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
            if item is None:
                stop = True
                break
            items.append(item)
            size += len(item.x)
        return items, stop

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._queue.get()
            if first is None:
                return
            items, stop = await self._collect(first)
            x = np.concatenate([item.x for item in items])
            start = time.perf_counter()
            try:
                probs = await loop.run_in_executor(self._executor, self.predict, x)
            except Exception as err:  # the model failed: every waiting request learns why
                for item in items:
                    if not item.future.done():
                        item.future.set_exception(err)
                continue
            seconds = time.perf_counter() - start
            if self.on_batch is not None:
                self.on_batch(len(x), seconds)
            offset = 0
            for item in items:
                k = len(item.x)
                if not item.future.done():
                    item.future.set_result(BatchResult(probs[offset:offset + k], seconds, len(x)))
                offset += k
            if stop:
                return
