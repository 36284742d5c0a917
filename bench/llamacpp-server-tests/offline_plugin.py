"""pytest plugin loaded (-p offline_plugin) into llama.cpp's server test suite when it runs offline.

- ServerPreset.load_all() only pre-downloads every preset's model; offline the wrapper resolves models to local
  files instead, so it becomes a no-op (otherwise one unavailable preset would error every module).
- A test whose server exits with the wrapper's MODEL_UNAVAILABLE code, or that tries to download a file, is
  reported as skipped "model unavailable offline": it says nothing about either server.
- Each test gets SUITE_TEST_TIMEOUT seconds (default 120) so a server that never answers fails that test instead
  of stalling the run (the suite's own request timeout is 600 s).
"""
import os
import signal
import sys

import pytest

UNAVAILABLE_MARKERS = (
    "Server process died with return code 3",
    "urlopen error",  # wget.download of a LoRA, draft model or image
    "Name or service not known",
    "Temporary failure in name resolution",
    "No such file or directory: './tmp/",  # download_file's target when nothing could be downloaded
)


def pytest_configure(config):
    sys.path.insert(0, str(config.rootpath))
    import utils  # the suite's own module; conftest imports the same object

    utils.ServerPreset.load_all = staticmethod(lambda: None)


class TestTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise TestTimeout(f"test ran past SUITE_TEST_TIMEOUT={os.environ.get('SUITE_TEST_TIMEOUT', '120')}s")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    seconds = int(os.environ.get("SUITE_TEST_TIMEOUT", "120"))
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.excinfo is not None:
        text = str(call.excinfo.value) + "\n" + str(report.longrepr)
        if any(m in text for m in UNAVAILABLE_MARKERS):
            report.outcome = "skipped"
            report.longrepr = (str(item.path), item.location[1] or 0, "model unavailable offline")
