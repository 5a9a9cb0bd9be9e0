"""A child process that runs ``kvmnet validate`` on one input after another.

Reads one JSON line per input (``{"files": {name: text}, "env": {...}}``) from
stdin and answers one JSON line: the exit code, stderr and stdout, or the
traceback of an exception that escaped the CLI. Its address space is limited
(``RLIMIT_AS``, 2 GiB), so an input that would exhaust memory ends in a
MemoryError here, not in the test run.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import shutil
import sys
import tempfile
import traceback

ADDRESS_SPACE = 2 * 1024 ** 3


def run_one(request: dict, workdir: str) -> dict:
    from kvmnet.cli import main

    case = tempfile.mkdtemp(dir=workdir)
    try:
        for name, text in request["files"].items():
            with open(os.path.join(case, name), "w", encoding="utf-8", errors="surrogatepass") as f:
                f.write(text)
        saved_env = {k: os.environ.get(k) for k in request.get("env", {})}
        os.environ.update(request.get("env", {}))
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                rc = main(["-C", case, "--no-color", *request.get("args", ["validate"])])
        except BaseException as e:   # noqa: BLE001 - this is what the fuzzer looks for
            return {"crash": "".join(traceback.format_exception(e))[-4000:]}
        finally:
            for k, v in saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        shown = err.getvalue().replace(case + os.sep, "").replace(os.path.basename(case) + os.sep, "")
        return {"rc": rc, "stderr": shown,
                "stdout": out.getvalue()}
    finally:
        shutil.rmtree(case, ignore_errors=True)


def main() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    workdir = tempfile.mkdtemp(prefix="kvmnet-fuzz-")
    os.chdir(workdir)   # diagnostics name files relative to the working directory
    try:
        for line in sys.stdin:
            answer = run_one(json.loads(line), workdir)
            sys.__stdout__.write(json.dumps(answer) + "\n")
            sys.__stdout__.flush()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
