"""Size limits of a run's answer: the worker refuses a big result, the parent is the backstop."""

import dataclasses

from arangotasks.sandbox import QuickJSSandbox
from arangotasks.sandbox.base import Limits

SMALL = Limits(
    timeout=5.0,
    output_bytes=1024,
    result_bytes=1024,
    error_message_bytes=1024,
    error_stack_bytes=1024,
)


async def test_the_worker_refuses_a_result_beyond_the_cap():
    sandbox = QuickJSSandbox(workers=1, limits=SMALL, compile_workers=0)
    await sandbox.start()
    try:
        outcome = await sandbox.run("print('kept'); return 'x'.repeat(2000)", None)
        assert not outcome.ok and outcome.result_json is None
        assert outcome.error is not None and outcome.error["type"] == "result"
        assert outcome.error["name"] == "RangeError"
        assert outcome.output == ["kept"]
        # Multi-byte characters count as their UTF-8 bytes.
        outcome = await sandbox.run("return 'é'.repeat(600)", None)
        assert outcome.error is not None and outcome.error["type"] == "result"
        outcome = await sandbox.run("return 'é'.repeat(400)", None)
        assert outcome.ok and outcome.result_json == '"' + "é" * 400 + '"'
    finally:
        await sandbox.close()


async def test_the_parent_refuses_an_answer_beyond_its_line_limit():
    # The parent reads answers up to what the sandbox's limits allow (about 90 KB here); a run
    # whose own limits let a worker send more is cut off there, and the worker is replaced.
    sandbox = QuickJSSandbox(workers=1, limits=SMALL, compile_workers=0)
    await sandbox.start()
    try:
        lax = dataclasses.replace(SMALL, result_bytes=1 << 20)
        outcome = await sandbox.run("return 'x'.repeat(200000)", None, lax)
        assert outcome.error is not None
        assert (outcome.error["type"], outcome.error["name"]) == ("result", "AnswerTooLarge")
        outcome = await sandbox.run("return 1 + 1", None)
        assert outcome.ok and outcome.result_json == "2"
    finally:
        await sandbox.close()
