"""`pyrewind html`: the page of a real recording, opened in headless Chromium and driven like a
user would (URL fragment, keys, a click in the timeline) through the DevTools protocol over
--remote-debugging-pipe. Checks the line, locals and memory diagram shown against the
recording's jsonl export, and keeps a screenshot in BUILD/test-artifacts/html/."""

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest

import rwd
from compare import load_jsonl
from e2e_util import EXIT_USAGE, program, run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """A headless Chromium and one page, spoken to with the DevTools protocol: JSON messages
    ending in NUL, read from fd 4 and written to fd 3 of the browser."""

    def __init__(self, profile_dir):
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        # Out of the way of 3 and 4, which the child gets them as.
        high_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 10)
        high_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 10)
        for fd in (to_browser_r, from_browser_w):
            os.close(fd)

        def child_fds():
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             "--no-first-run", "--hide-scrollbars", "--window-size=1400,1000",
             "--user-data-dir=" + profile_dir, "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=False, preexec_fn=child_fds)
        os.close(high_r)
        os.close(high_w)
        self.out = os.fdopen(to_browser_w, "wb", buffering=0)
        self.inp = os.fdopen(from_browser_r, "rb", buffering=0)
        self.buffer = b""
        self.errors = []  # uncaught exceptions of the page's script
        self.next_id = 0
        self.session = None
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]
        self.call("Runtime.enable")  # reports the page script's uncaught exceptions

    def call(self, method, **params):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        self.out.write(json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self.buffer:
                chunk = self.inp.read(65536)
                if not chunk:
                    raise AssertionError("chromium closed the DevTools pipe (exit %s)" % self.proc.poll())
                self.buffer += chunk
            raw, self.buffer = self.buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("method") == "Runtime.exceptionThrown":
                self.errors.append(reply["params"]["exceptionDetails"])
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise AssertionError("%s failed: %s" % (method, reply["error"]))
                return reply["result"]

    def eval(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError("%s raised: %s" % (expression, result["exceptionDetails"]))
        return result["result"].get("value")

    def open(self, url):
        self.call("Page.navigate", url=url)
        deadline = time.time() + 30
        while self.eval("document.readyState") != "complete" or not self.eval("!!document.getElementById('seq')"):
            if time.time() > deadline:
                raise AssertionError("the page did not render: " + str(self.eval("document.body.innerText")))
            time.sleep(0.05)

    def key(self, key, shift=False):
        codes = {"ArrowLeft": 37, "ArrowUp": 38, "ArrowRight": 39, "ArrowDown": 40, "Home": 36, "End": 35}
        for kind in ("rawKeyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", type=kind, key=key, code=key, modifiers=8 if shift else 0,
                      windowsVirtualKeyCode=codes[key])

    def click(self, x, y):
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def screenshot(self, path):
        width, height = self.eval("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                         clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        try:
            self.call("Browser.close")
        except AssertionError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.out.close()
        self.inp.close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM:
        pytest.skip("chromium is not installed (Debian package chromium; tools/setup-deps.sh installs it)")
    profile = tempfile.mkdtemp(prefix="pyrewind-chromium-")
    try:
        b = Browser(profile)
    except (OSError, AssertionError, StopIteration) as e:
        shutil.rmtree(profile, ignore_errors=True)
        pytest.skip("chromium does not start headless here: %s" % e)
    yield b
    errors = b.errors
    b.close()
    assert not errors, "the page's script raised: %r" % errors
    shutil.rmtree(profile, ignore_errors=True)


# What the page shows, read from its DOM.
STATE = """(() => {
  const q = (s) => document.querySelector(s);
  const current = q('#source .ln.current');
  const top = q('#stack .frame.top');
  const locals = {};
  if (top) for (const row of top.querySelectorAll('tr')) locals[row.dataset.name] = row.querySelector('.value').textContent;
  const vars = {};
  for (const g of document.querySelectorAll('#memory g.frame')) {
    const frame = {};
    for (const v of g.querySelectorAll('g.var')) frame[v.dataset.var] = v.dataset.ref || v.querySelector('.prim').textContent;
    vars[g.dataset.name] = frame;
  }
  const boxes = {};
  for (const g of document.querySelectorAll('#memory g.obj')) boxes[g.dataset.key] = (boxes[g.dataset.key] || 0) + 1;
  const arrows = [...document.querySelectorAll('#memory path.arrow')].map((p) => [p.dataset.from, p.dataset.to]);
  return {seq: Number(q('#seq').textContent), hash: location.hash,
          line: current ? Number(current.dataset.line) : null,
          text: current ? current.querySelector('.text').textContent : null,
          source: q('#source').textContent, func: top ? top.dataset.func : null,
          frames: [...document.querySelectorAll('#stack .frame')].map((f) => f.dataset.func),
          locals, vars, boxes, arrows, warnings: q('#warnings').textContent};
})()"""


def make_page(pyrewind, work, prog_args, name, options=()):
    rec = work / (name + ".rwd")
    res = pyrewind.record(prog_args, rec)
    assert res.returncode == 0, res.describe()
    page = work / (name + ".html")
    res = run([pyrewind.path, "html", str(rec), "-o", str(page)] + list(options))
    assert res.returncode == 0, res.describe()
    jsonl = work / (name + ".jsonl")
    pyrewind.export(rec, jsonl)
    return rec, page, [e for e in load_jsonl(jsonl) if "seq" in e], res


def artifact_dir(pyrewind):
    path = os.path.join(os.path.dirname(os.path.dirname(pyrewind.path)), "test-artifacts", "html")
    os.makedirs(path, exist_ok=True)
    return path


def test_page_is_self_contained(pyrewind, work):
    _, page, events, _ = make_page(pyrewind, work, [program("aliasing.py")], "aliasing")
    html = page.read_text(encoding="utf-8")
    for needle in ("<link", "@import", "src=\"http", "href=\"http", "url(http", "fetch(", "XMLHttpRequest"):
        assert needle not in html, needle
    assert len(html) < 200000, "a 30-step page should be small, got %d bytes" % len(html)


def test_stepping_through_the_page(pyrewind, interp, work, browser):
    _, page, events, _ = make_page(pyrewind, work, [program("aliasing.py")], "aliasing")
    source = open(program("aliasing.py"), encoding="utf-8").read().splitlines()
    by_seq = {e["seq"]: e for e in events}
    # add_item about to `return count`: main's two names and add_item's parameter are one list.
    at = next(e for e in events if e["func"].endswith("add_item") and e["event"] == "line"
              and source[e["line"] - 1].strip() == "return count")
    browser.open(page.as_uri() + "#step=%d" % at["seq"])
    s = browser.eval(STATE)
    assert s["seq"] == at["seq"] and s["line"] == at["line"] and s["text"].strip() == "return count", s
    assert s["func"].endswith("add_item")
    assert s["locals"] == {"basket": "['apple', 'pear', 'plum']", "item": "'plum'", "count": "3"}, s["locals"]
    main = next(v for k, v in s["vars"].items() if k.endswith("main"))
    add_item = next(v for k, v in s["vars"].items() if k.endswith("add_item"))
    fruits = main["fruits"]
    assert fruits.endswith(":list") and main["same"] == fruits and add_item["basket"] == fruits, s["vars"]
    assert s["boxes"][fruits] == 1, "one box per object: %r" % s["boxes"]
    # grid = [fruits, [1, 2], fruits]: its first and last cells point at that same box.
    grid = main["grid"]
    assert grid != fruits and s["boxes"][grid] == 1
    assert [grid + "[0]", fruits] in s["arrows"] and [grid + "[2]", fruits] in s["arrows"], s["arrows"]
    inner = [to for frm, to in s["arrows"] if frm == grid + "[1]"]
    assert len(inner) == 1 and inner[0] not in (fruits, grid)
    assert sum(1 for _, to in s["arrows"] if to == fruits) == 5, s["arrows"]
    assert main["owner"].endswith(":Account") and main["prices"].endswith(":dict")
    assert add_item["count"] == "3" and add_item["item"] == "'plum'"
    browser.screenshot(os.path.join(artifact_dir(pyrewind), "aliasing-python%d.%d.png" % (3, interp.minor)))

    # Every step, forward with the right arrow key, against the recording's own export.
    browser.open(page.as_uri() + "#step=0")
    for i, e in enumerate(events):
        if i:
            browser.key("ArrowRight")
        s = browser.eval(STATE)
        assert s["seq"] == e["seq"] and s["hash"] == "#step=%d" % e["seq"], (s["seq"], e)
        if e["line"]:
            assert s["line"] == e["line"] and s["text"] == source[e["line"] - 1], (s["line"], e)
        if "locals" in e:
            assert list(s["locals"]) == list(e["locals"]), (s["locals"], e)
            for name, value in e["locals"].items():
                if isinstance(value, (int, str)) and not isinstance(value, bool):
                    assert s["locals"][name] == repr(value), (name, s["locals"], e)
    assert browser.eval(STATE)["seq"] == events[-1]["seq"]

    # At add_item's return, its frame in the diagram shows the value returned.
    returned = next(e for e in events if e["func"].endswith("add_item") and e["event"] == "return")
    browser.open(page.as_uri() + "#step=%d" % returned["seq"])
    assert browser.eval("document.querySelector('#memory g.return-value .prim').textContent") == "3"
    assert browser.eval("document.getElementById('returned').textContent") == "returns 3"

    # Over calls, out, back to the call: from main's line after `total = add_item(...)`.
    after = next(e for e in events if e["func"].endswith("main") and e["event"] == "line"
                 and source[e["line"] - 1].strip().startswith("return total"))
    browser.open(page.as_uri() + "#step=%d" % after["seq"])
    browser.key("ArrowLeft", shift=True)
    s = browser.eval(STATE)
    assert s["func"].endswith("main") and s["text"].strip().startswith("total = add_item"), s
    browser.key("ArrowRight")  # into add_item's call
    s = browser.eval(STATE)
    call = by_seq[s["seq"]]
    assert call["event"] == "call" and call["func"].endswith("add_item"), call
    browser.key("ArrowUp")  # out: back in main, after the call
    assert browser.eval(STATE)["seq"] == after["seq"]
    browser.open(page.as_uri() + "#step=%d" % at["seq"])
    browser.key("ArrowDown")  # back to the call of add_item
    assert browser.eval(STATE)["seq"] == call["seq"]

    # A click on add_item's span in the timeline jumps to its call.
    browser.open(page.as_uri() + "#step=0")
    browser.eval("document.querySelector('#calls').scrollIntoView()")
    box = browser.eval("""(() => { const r = document.querySelector('#calls rect[data-func$="add_item"]')
                                           .getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()""")
    browser.click(*box)
    assert browser.eval(STATE)["seq"] == call["seq"]


def test_source_unavailable_and_module_aliases(pyrewind, work, browser):
    code = "xs = [1, 2]\nys = xs\nzs = [xs, 'x']\nn = len(zs)\n"
    _, page, events, _ = make_page(pyrewind, work, ["-c", code], "inline")
    last_line = [e for e in events if e["event"] == "line"][-1]
    browser.open(page.as_uri() + "#step=%d" % last_line["seq"])
    s = browser.eval(STATE)
    assert "Source unavailable" in s["source"], s["source"]
    module = next(iter(s["vars"].values()))
    assert module["xs"] == module["ys"] and s["boxes"][module["xs"]] == 1, s
    assert [module["zs"] + "[0]", module["xs"]] in s["arrows"]


def test_long_recording_is_cut_with_a_clear_message(pyrewind, work, browser):
    _, page, events, res = make_page(pyrewind, work, [program("aliasing.py")], "cut", options=["--max-steps", "10"])
    err = res.stderr.decode()
    assert "more than 10 steps" in err and "--from 10" in err, err
    browser.open(page.as_uri())
    s = browser.eval(STATE)
    assert "more than 10 steps" in s["warnings"] and "--from 10" in s["warnings"], s["warnings"]
    assert browser.eval("document.getElementById('slider').max") == "9"

    # --from/--to select a part; a time works as well as a seq.
    page2 = work / "part.html"
    res = run([pyrewind.path, "html", str(work / "cut.rwd"), "-o", str(page2), "--from", "10", "--to", "14"])
    assert res.returncode == 0, res.describe()
    browser.open(page2.as_uri())
    assert browser.eval(STATE)["seq"] == 10
    assert browser.eval("document.getElementById('slider').max") == "4"
    assert run([pyrewind.path, "html", str(work / "cut.rwd"), "-o", str(page2), "--from", "0.5s"]).returncode == 0
    res = run([pyrewind.path, "html", str(work / "cut.rwd"), "-o", str(page2), "--from", "soon"])
    assert res.returncode == EXIT_USAGE and "nor an event number" in res.stderr.decode(), res.describe()


def test_threads_and_thread_filter(pyrewind, work, browser):
    _, page, events, _ = make_page(pyrewind, work, [program("threads.py")], "threads")
    browser.open(page.as_uri())
    names = browser.eval("[...document.querySelectorAll('#calls .lane-label')].map((t) => t.textContent)")
    assert names[0] == "MainThread" and {"first", "second", "third"} <= set(names), names
    assert browser.eval("document.getElementById('slider').max") == str(len(events) - 1)

    worker = next(e for e in events if e["func"].endswith("crunch"))["tid"]
    mine = [e for e in events if e["tid"] == worker]
    filtered = work / "one.html"
    res = run([pyrewind.path, "html", str(work / "threads.rwd"), "-o", str(filtered), "--thread", str(worker)])
    assert res.returncode == 0, res.describe()
    browser.open(filtered.as_uri())
    seqs = browser.eval("JSON.parse(document.getElementById('pyrewind-steps').textContent).map((s) => s[0])")
    assert seqs == [e["seq"] for e in mine]
    last_line = [e for e in mine if e["event"] == "line"][-1]
    browser.open(filtered.as_uri() + "#step=%d" % last_line["seq"])
    s = browser.eval(STATE)
    assert s["func"].endswith("crunch") and list(s["locals"]) == list(last_line["locals"]), (s, last_line)
    assert browser.eval("document.getElementById('event').textContent").endswith(
        browser.eval("document.querySelector('#calls .lane-label').textContent"))


def test_damaged_recording_shows_the_steps_before_the_damage(pyrewind, work, browser):
    rec = work / "many.rwd"
    res = pyrewind.record([program("many_events.py"), "20000"], rec, cwd=str(work))
    assert res.returncode == 0, res.describe()
    data = rec.read_bytes()
    _, chunks, _, _ = rwd.layout(data)
    assert len(chunks) >= 3, chunks
    victim = chunks[2]
    cut = work / "cut.rwd"
    cut.write_bytes(data[:victim.offset + (victim.end - victim.offset) // 2])
    page = work / "cut.html"
    first = victim.first_seq - 5
    res = run([pyrewind.path, "html", str(cut), "-o", str(page), "--from", str(first)])
    assert res.returncode == 0, res.describe()
    assert "warning" in res.stderr.decode() and "truncated" in res.stderr.decode(), res.describe()
    browser.open(page.as_uri())
    s = browser.eval(STATE)
    assert s["seq"] == first and "incomplete" in s["warnings"] and "truncated" in s["warnings"], s
    assert browser.eval("document.getElementById('slider').max") == "4"


def test_values_as_python_shows_them(pyrewind, work, browser):
    _, page, events, _ = make_page(pyrewind, work, [program("values.py")], "values")
    expected = {
        "scalars": dict(none=None, yes=True, no=False, small=7, negative=-12, edge=2 ** 53, edge_plus=2 ** 53 + 1,
                        edge_minus_minus=-(2 ** 53) - 1, wide=2 ** 1024 - 1, tenth=0.1, whole=5.0, neg_zero=-0.0,
                        tiny=5e-324, large=1e300, nan=float("nan"), inf=float("inf"), ninf=float("-inf"), empty="",
                        unicode="h\u00e9llo \u2603 \U0001F600", control="tab\tnul\x00quote\"backslash\\",
                        b_empty=b"", b_short=b"\x00\xffabc",
                        over_limit="b" * 256),
        "containers": dict(empty_list=[], empty_tuple=(), empty_dict={}, empty_set=set(), empty_frozen=frozenset(),
                           mixed=(1, "two", 3.0, None, True, b"6"),
                           keys={1: "int", (2, 3): "tuple", None: "none", "s": [1], 4.5: "float", False: "bool"},
                           numbers={3, 1, 2}, frozen=frozenset({"z"}), items25=list(range(25)), depth3=[[[1]]]),
    }
    for func, values in expected.items():
        last = [e for e in events if e["func"].endswith(func) and e["event"] == "line"][-1]
        browser.open(page.as_uri() + "#step=%d" % last["seq"])
        shown = browser.eval(STATE)["locals"]
        for name, value in values.items():
            # A str cut at the limit: the prefix, then how long it was.
            want = repr(value) + "\u2026 (257 chars)" if name == "over_limit" else repr(value)
            assert shown[name] == want, (func, name, shown[name])
