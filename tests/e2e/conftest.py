"""pytest set-up for the pyrewind end-to-end suite.

One pytest session tests one interpreter (ctest registers one test per interpreter, see
tests/CMakeLists.txt):

    /usr/bin/python3 -m pytest tests/e2e --pyrewind=BUILD/bin/pyrewind --python=/path/to/python3.X
    /usr/bin/python3 -m pytest tests/e2e -m cli --pyrewind=BUILD/bin/pyrewind --python=auto

--python=auto picks the first interpreter of DEFAULT_INTERPRETERS whose agent was built; it is
meant for the interpreter-independent tests (marker "cli"). A missing interpreter, or one whose
agent was not built, skips every test with a reason naming it; the line
"pyrewind-e2e: SKIPPED ..." in the header lets ctest report the test as skipped.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e_util import DEFAULT_INTERPRETERS, Interpreter, Pyrewind  # noqa: E402


def pytest_addoption(parser):
    group = parser.getgroup("pyrewind")
    group.addoption("--pyrewind", required=True, help="path of the built bin/pyrewind")
    group.addoption("--python", default="auto",
                    help="interpreter under test, or 'auto' (first one with an agent)")
    group.addoption("--agent-dir", default=None,
                    help="directory of pyrewind-agent-cpython-3.X.so (default: BIN/../lib/pyrewind)")
    group.addoption("--keep-artifacts", default=None,
                    help="copy each test's recordings and exports into this directory")


def pytest_configure(config):
    config.addinivalue_line("markers", "cli: interpreter-independent CLI and file-format tests")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
    config.addinivalue_line("markers", "soak: the one-minute soak, run once per suite (ctest e2e_soak)")
    pyrewind = os.path.abspath(config.getoption("--pyrewind"))
    agent_dir = config.getoption("--agent-dir") or os.path.join(
        os.path.dirname(os.path.dirname(pyrewind)), "lib", "pyrewind")
    wanted = config.getoption("--python")
    skip = None
    interp = None
    if wanted == "auto":
        for path in DEFAULT_INTERPRETERS:
            cand = Interpreter.probe(path)
            if cand and os.path.exists(cand.agent_path(agent_dir)):
                interp = cand
                break
        if interp is None:
            skip = "no interpreter of %s with a built agent in %s" % (
                ", ".join(DEFAULT_INTERPRETERS), agent_dir)
    else:
        if not os.path.exists(wanted):
            skip = "interpreter %s is not installed" % wanted
        else:
            interp = Interpreter.probe(wanted)
            if interp is None:
                skip = "interpreter %s does not run" % wanted
            elif not os.path.exists(interp.agent_path(agent_dir)):
                skip = "no agent was built for %s (%s missing)" % (wanted, interp.agent_path(agent_dir))
                interp = None
    config._pyrewind_env = {"pyrewind": pyrewind, "agent_dir": agent_dir, "interp": interp,
                            "skip": skip, "keep": config.getoption("--keep-artifacts")}


def pytest_report_header(config):
    env = config._pyrewind_env
    lines = ["pyrewind: %s" % env["pyrewind"], "agent dir: %s" % env["agent_dir"]]
    if env["interp"]:
        lines.append("interpreter: %s (Python %s)" % (env["interp"].path, env["interp"].version))
    return lines


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    # Printed also with -q; ctest's SKIP_REGULAR_EXPRESSION reports the test as skipped.
    if config._pyrewind_env["skip"]:
        terminalreporter.write_line("pyrewind-e2e: SKIPPED all tests: %s" % config._pyrewind_env["skip"])


def pytest_collection_modifyitems(config, items):
    reason = config._pyrewind_env["skip"]
    if reason:
        marker = pytest.mark.skip(reason=reason)
        for item in items:
            item.add_marker(marker)


@pytest.fixture(scope="session")
def interp(pytestconfig):
    env = pytestconfig._pyrewind_env
    if env["interp"] is None:
        pytest.skip(env["skip"])
    return env["interp"]


@pytest.fixture(scope="session")
def pyrewind(pytestconfig, interp):
    env = pytestconfig._pyrewind_env
    if not os.access(env["pyrewind"], os.X_OK):
        pytest.fail("pyrewind binary %s is missing or not executable (build it first)" % env["pyrewind"])
    return Pyrewind(env["pyrewind"], interp)


@pytest.fixture
def work(tmp_path, request, pytestconfig):
    """A per-test directory; copied to --keep-artifacts DIR/<test> when given."""
    yield tmp_path
    keep = pytestconfig._pyrewind_env["keep"]
    if keep:
        import shutil
        dest = os.path.join(keep, request.node.name.replace("/", "_"))
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(str(tmp_path), dest)
