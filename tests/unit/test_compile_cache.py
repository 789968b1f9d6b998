"""Compile checks run in a worker of their own and are cached per command."""

import os
import signal

from arangotasks.sandbox import QuickJSSandbox


async def test_compile_checks_are_cached_and_use_their_own_worker():
    sandbox = QuickJSSandbox(workers=1)
    await sandbox.start()
    try:
        assert await sandbox.compile_error("return 1;") is None
        bad = await sandbox.compile_error("for (i")
        assert bad is not None and bad.startswith("SyntaxError")
        # Kill the compile worker: cached answers do not need it.
        compiler = sandbox._compiler
        assert compiler is not None and compiler.pids != sandbox.pids
        os.kill(compiler.pids[0], signal.SIGKILL)
        assert await sandbox.compile_error("return 1;") is None
        assert await sandbox.compile_error("for (i") == bad
        # A new command needs a worker: the killed one was replaced.
        assert await sandbox.compile_error("return 2;") is None
    finally:
        await sandbox.close()
