"use strict";
// The pyrewind page: rebuilds every step's stack from the compact data written by
// tools/html/page_data.cpp (its header documents the format) and draws the current step.
(function () {
  const steps = JSON.parse(document.getElementById("pyrewind-steps").textContent);
  const T = JSON.parse(document.getElementById("pyrewind-tables").textContent);
  const KINDS = ["?", "call", "line", "return", "exception", "exception_handled"];
  const KIND_CALL = 1, KIND_RETURN = 3;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);

  // ---- reconstruction --------------------------------------------------------------------
  // stacks[i]: the frames shown at step i (outermost first), immutable and shared between
  // steps. A frame: {uid, code, depth, complete, names, values, line, start}; `start` is the
  // step where it first appears. spans: one per frame, for the timeline.
  const stacks = new Array(steps.length);
  const previousOfThread = new Array(steps.length);
  const spans = [];
  const threads = new Map();  // thread -> {stack, open, last, lanes}
  let nextUid = 0;
  for (let i = 0; i < steps.length; i++) {
    const s = steps[i];
    let t = threads.get(s[2]);
    if (!t) {
      t = {stack: [], open: [], last: -1, lanes: 0};
      threads.set(s[2], t);
    }
    const keep = s[6];
    while (t.open.length > keep) t.open.pop().end = t.last;
    const stack = t.stack.slice(0, keep);
    if (s[8]) {
      for (const change of s[8]) {
        const f = Object.assign({}, stack[change[0]]);
        f.complete = !!change[1];
        if (change.length === 4) {
          f.names = change[2];
          f.values = change[3];
        } else if (change[2].length) {
          f.values = f.values.slice();
          for (const [slot, value] of change[2]) f.values[slot] = value;
        }
        stack[change[0]] = f;
      }
    }
    if (s[7]) {
      for (const p of s[7]) {
        stack.push({uid: nextUid++, code: p[0], depth: p[1], complete: !!p[2], names: p[3], values: p[4],
                    line: 0, start: i});
        const span = {thread: s[2], lane: stack.length - 1, start: i, end: i, code: p[0]};
        spans.push(span);
        t.open.push(span);
      }
    }
    const top = stack.length - 1;
    if (stack[top].line !== s[5]) stack[top] = Object.assign({}, stack[top], {line: s[5]});
    previousOfThread[i] = t.last;
    t.stack = stack;
    t.last = i;
    t.lanes = Math.max(t.lanes, stack.length);
    stacks[i] = stack;
  }
  for (const t of threads.values()) for (const span of t.open) span.end = t.last;

  // ---- values as Python shows them -------------------------------------------------------
  function pyString(s) {
    const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
    let out = quote;
    for (const ch of s) {
      const c = ch.codePointAt(0);
      if (ch === quote || ch === "\\") out += "\\" + ch;
      else if (ch === "\n") out += "\\n";
      else if (ch === "\t") out += "\\t";
      else if (ch === "\r") out += "\\r";
      else if (c < 32 || c === 127) out += "\\x" + c.toString(16).padStart(2, "0");
      else out += ch;
    }
    return out + quote;
  }
  function pyBytes(hex) {
    let out = "b'";
    for (let i = 0; i < hex.length; i += 2) {
      const c = parseInt(hex.substr(i, 2), 16);
      if (c === 39 || c === 92) out += "\\" + String.fromCharCode(c);
      else if (c >= 32 && c < 127) out += String.fromCharCode(c);
      else if (c === 9) out += "\\t";
      else if (c === 10) out += "\\n";
      else if (c === 13) out += "\\r";
      else out += "\\x" + hex.substr(i, 2);
    }
    return out + "'";
  }
  const isRef = (v) => v !== null && typeof v === "object" && v.id !== undefined;
  const isContainer = (v) => isRef(v) && Array.isArray(v.v);
  const objectKey = (v) => v.id + ":" + v.t;
  // repr() of a recorded value; `room` bounds the text of nested containers. With `fresh`
  // (objects by key, see collectObjects), a container is shown as last captured anywhere on
  // the stack: a caller's locals were captured before the call, and the callee may have
  // changed the object since.
  function repr(v, room = 200, fresh = null) {
    if (v === null) return "None";
    if (v === true) return "True";
    if (v === false) return "False";
    if (typeof v === "number") return String(v);
    if (typeof v === "string") return pyString(v);
    switch (v.t) {
      case "float": return v.v;
      case "int": return v.v !== undefined ? v.v : "<int of " + v.bits + " bits>";
      case "str": return pyString(v.v) + "\u2026 (" + v.n + " chars)";
      case "bytes": return pyBytes(v.v) + (v.x ? "\u2026 (" + v.n + " bytes)" : "");
      case "redacted": return "<redacted>";
      case "unknown": return "?";
    }
    if (v.o) return v.r !== undefined ? v.r : "<" + v.t + " object>";
    if (fresh && fresh.has(objectKey(v))) v = fresh.get(objectKey(v));
    const parts = [];
    let used = 0;
    const step = v.t === "dict" ? 2 : 1;
    for (let k = 0; k < v.v.length; k += step) {
      const part = step === 2 ? repr(v.v[k], room / 2, fresh) + ": " + repr(v.v[k + 1], room / 2, fresh)
                              : repr(v.v[k], room / 2, fresh);
      used += part.length + 2;
      if (used > room) break;
      parts.push(part);
    }
    if (parts.length * step < v.v.length || v.x) parts.push("\u2026");
    const body = parts.join(", ");
    switch (v.t) {
      case "list": return "[" + body + "]";
      case "tuple": return "(" + body + (v.n === 1 && parts.length === 1 ? ",)" : ")");
      case "dict": return "{" + body + "}";
      case "set": return v.n === 0 ? "set()" : "{" + body + "}";
      case "frozenset": return v.n === 0 ? "frozenset()" : "frozenset({" + body + "})";
    }
    return "<" + v.t + ">";
  }
  const value = (index) => T.values[index];
  const codeName = (code) => T.codes[code][1];
  const codeFile = (code) => T.files[T.codes[code][0]];
  const baseName = (path) => path.slice(path.lastIndexOf("/") + 1);
  function threadName(thread) {
    for (const [index, name] of T.threads) if (index === thread) return name || "thread " + thread;
    return "thread " + thread;
  }
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function clip(text, max) {
    return text.length > max ? text.slice(0, max - 1) + "\u2026" : text;
  }

  // ---- header ----------------------------------------------------------------------------
  const script = T.argv.length > 1 ? baseName(T.argv[1]) : T.recording;
  document.title = "pyrewind \u2014 " + script;
  $("title").textContent = script;
  const started = T.start_wall_ns ? new Date(T.start_wall_ns / 1e6).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "";
  $("meta").textContent = [T.recording, "Python " + T.python, T.argv.join(" "), started,
                           steps.length + " of " + T.events + " events" +
                           (T.thread_filter !== null ? ", thread " + T.thread_filter : "")]
                              .filter(Boolean).join(" \u00b7 ");
  for (const w of T.warnings) $("warnings").appendChild(el("p", {}, w));
  if (T.locals_omitted) $("warnings").appendChild(el("p", {}, "Recorded with --no-locals: no variables to show."));

  // ---- navigation ------------------------------------------------------------------------
  let current = -1;
  const slider = $("slider");
  slider.max = Math.max(0, steps.length - 1);
  const height = (i) => stacks[i].length;
  function find(from, direction, accept) {
    for (let j = from + direction; j >= 0 && j < steps.length; j += direction) if (accept(j)) return j;
    return from;
  }
  const sameThread = (i, j) => steps[j][2] === steps[i][2];
  const moves = {
    forward: (i) => Math.min(i + 1, steps.length - 1),
    back: (i) => Math.max(i - 1, 0),
    forwardOver: (i) => find(i, 1, (j) => sameThread(i, j) && height(j) <= height(i)),
    backOver: (i) => find(i, -1, (j) => sameThread(i, j) && height(j) <= height(i)),
    out: (i) => find(i, 1, (j) => sameThread(i, j) && height(j) < height(i)),
    toCall: (i) => stacks[i][stacks[i].length - 1].start,
    nextCall: (i) => find(i, 1, (j) => steps[j][3] === KIND_CALL),
    previousCall: (i) => find(i, -1, (j) => steps[j][3] === KIND_CALL),
    first: () => 0,
    last: () => steps.length - 1,
  };
  function indexOfSeq(seq) {
    let lo = 0, hi = steps.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (steps[mid][0] < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
  function go(i) {
    if (!steps.length) return;
    i = Math.max(0, Math.min(steps.length - 1, i));
    if (i === current) return;
    current = i;
    render();
    const hash = "#step=" + steps[i][0];
    if (location.hash !== hash) history.replaceState(null, "", hash);
  }
  function fromHash() {
    const m = /step=(\d+)/.exec(location.hash);
    go(m ? indexOfSeq(Number(m[1])) : 0);
  }
  const buttons = {first: "first", "back-over": "backOver", back: "back", forward: "forward",
                   "forward-over": "forwardOver", last: "last"};
  for (const id in buttons) $(id).addEventListener("click", () => go(moves[buttons[id]](current)));
  slider.addEventListener("input", () => go(Number(slider.value)));
  document.addEventListener("keydown", (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const key = {ArrowRight: e.shiftKey ? "forwardOver" : "forward", ArrowLeft: e.shiftKey ? "backOver" : "back",
                 ArrowUp: "out", ArrowDown: "toCall", Home: "first", End: "last",
                 c: "nextCall", C: "previousCall"}[e.key];
    if (!key || !steps.length) return;
    e.preventDefault();
    go(moves[key](current));
  });
  window.addEventListener("hashchange", fromHash);

  // ---- source ----------------------------------------------------------------------------
  let shownFile = null;
  function renderSource(s) {
    const file = codeFile(s[4]);
    const box = $("source");
    if (file !== shownFile) {
      shownFile = file;
      box.textContent = "";
      $("source-title").textContent = file.path || "Source";
      $("source-title").title = file.path;
      if (!file.lines) {
        box.appendChild(el("div", {class: "unavailable"},
                           "Source unavailable: " + file.unavailable + ". Line " + s[5] + " of " + (file.path || "?") + "."));
      } else {
        if (file.changed) box.appendChild(el("div", {class: "unavailable"}, "This file changed after the recording: the lines shown may differ from those that ran."));
        file.lines.forEach((text, k) => {
          const row = el("div", {class: "ln", "data-line": k + 1});
          row.appendChild(el("span", {class: "no"}, String(k + 1)));
          row.appendChild(el("span", {class: "text"}, text || " "));
          box.appendChild(row);
        });
      }
    }
    const old = box.querySelector(".ln.current");
    if (old) old.classList.remove("current");
    const row = box.querySelector('.ln[data-line="' + s[5] + '"]');
    if (row) {
      row.classList.add("current");
      const top = row.offsetTop - box.offsetTop;
      if (top < box.scrollTop || top > box.scrollTop + box.clientHeight - row.offsetHeight)
        box.scrollTop = top - box.clientHeight / 2;
    } else if (file.unavailable) {
      box.firstChild.textContent = "Source unavailable: " + file.unavailable + ". Line " + s[5] + " of " + (file.path || "?") + ".";
    }
  }

  // ---- event and stack -------------------------------------------------------------------
  const MAX_STACK_SHOWN = 30;
  function renderStack(i) {
    const s = steps[i];
    const stack = stacks[i];
    const event = $("event");
    event.textContent = "";
    const kind = KINDS[s[3]] || "?";
    event.appendChild(el("span", {class: "kind " + kind}, kind.replace("_", " ")));
    event.appendChild(el("b", {}, codeName(s[4])));
    event.appendChild(document.createTextNode(" line " + s[5] + " \u00b7 " + threadName(s[2])));
    if (s[3] === KIND_RETURN) event.appendChild(el("div", {class: "mono", id: "returned"},
        s.length > 9 ? "returns " + repr(value(s[9])) : "unwinds (an exception passes through)"));
    if (Array.isArray(s[9])) event.appendChild(el("div", {class: "mono", id: "raised"}, s[9][0] + (s[9][1] ? ": " + s[9][1] : "")));

    const previous = previousOfThread[i] >= 0 ? stacks[previousOfThread[i]] : [];
    const fresh = collectObjects(stack);
    const box = $("stack");
    box.textContent = "";
    for (let k = stack.length - 1; k >= 0 && k >= stack.length - MAX_STACK_SHOWN; k--) {
      const f = stack[k];
      const div = el("div", {class: "frame" + (k === stack.length - 1 ? " top" : ""), "data-func": codeName(f.code)});
      const head = el("div", {class: "head"});
      head.appendChild(el("span", {}, codeName(f.code)));
      const where = baseName(codeFile(f.code).path || "?") + (f.line ? ":" + f.line : "");
      head.appendChild(el("span", {class: "where", title: codeFile(f.code).path}, where));
      div.appendChild(head);
      if (!f.complete) div.appendChild(el("div", {class: "stale"}, "some records were lost: locals may be missing or out of date"));
      const before = previous[k] && previous[k].uid === f.uid ? previous[k] : null;
      const table = el("table", {class: "locals"});
      f.names.forEach((name, n) => {
        const nameText = T.names[name];
        let changed = false;
        if (before && k === stack.length - 1) {
          const at = before.names.indexOf(name);
          changed = at < 0 || before.values[at] !== f.values[n];
        }
        const row = el("tr", {class: changed ? "changed" : "", "data-name": nameText});
        row.appendChild(el("td", {class: "name"}, nameText));
        row.appendChild(el("td", {class: "value"}, repr(value(f.values[n]), 400, fresh)));
        table.appendChild(row);
      });
      if (f.names.length) div.appendChild(table);
      else div.appendChild(el("div", {class: "none"}, T.locals_omitted ? "locals not recorded" : "no local variables"));
      box.appendChild(div);
    }
    if (stack.length > MAX_STACK_SHOWN)
      box.appendChild(el("div", {class: "more-frames"}, (stack.length - MAX_STACK_SHOWN) + " outer frames not shown"));
  }

  // ---- memory diagram --------------------------------------------------------------------
  // Frames in a column (outermost at the top); every object with an id (containers and other
  // objects) is one box, however many names and containers refer to it, with an arrow from
  // each reference. Values without an id (numbers, strings, None, ...) are written in place.
  const MAX_DIAGRAM_FRAMES = 4, MAX_OBJECTS = 120;
  const CHAR = 7.5, ROW = 24, LABEL = 16, INDEX = 11, GAP_X = 64, GAP_Y = 16;
  const textWidth = (text) => text.length * CHAR;
  // Functions, classes and modules are written in place rather than drawn as boxes: a module's
  // namespace is full of them, and their arrows would hide those of the data.
  const IN_PLACE_TYPES = new Set(["function", "builtin_function_or_method", "method", "type", "module"]);
  const boxed = (v) => isRef(v) && !(v.o && IN_PLACE_TYPES.has(v.t));
  const inline = (v) => clip(isRef(v) && !boxed(v) && v.r === undefined ? (v.t === "type" ? "class" : v.t)
                                                                          : repr(v, 60), 24);

  function collectObjects(frames, returned) {
    // The innermost frame's locals were captured last: its view of an object wins, unless a
    // view cut by the depth limit meets a fuller one.
    const objects = new Map();
    const visit = (v) => {
      if (!boxed(v)) return;
      const key = objectKey(v);
      const seen = objects.get(key);
      if (seen && !(isContainer(v) && seen.x && v.v.length > seen.v.length)) return;
      objects.set(key, v);
      if (isContainer(v)) v.v.forEach(visit);
    };
    if (returned !== undefined) visit(returned);
    for (let k = frames.length - 1; k >= 0; k--) frames[k].values.forEach((index) => visit(value(index)));
    return objects;
  }

  function objectShape(v) {
    if (!isContainer(v)) {
      const title = v.t;
      const body = v.r !== undefined ? clip(v.r, 40) : "";
      return {kind: "object", w: Math.max(textWidth(title), textWidth(body)) + 20, h: LABEL + (body ? 2 * ROW - 6 : ROW), body};
    }
    if (v.t === "dict") {
      let kw = 24, vw = 24;
      for (let k = 0; k < v.v.length; k += 2) {
        kw = Math.max(kw, boxed(v.v[k]) ? 24 : textWidth(inline(v.v[k])) + 12);
        vw = Math.max(vw, boxed(v.v[k + 1]) ? 24 : textWidth(inline(v.v[k + 1])) + 12);
      }
      const rows = Math.max(1, v.v.length / 2) + (v.x ? 1 : 0);
      return {kind: "dict", kw, vw, w: kw + vw, h: LABEL + rows * ROW};
    }
    const cells = v.v.map((item) => (boxed(item) ? 28 : Math.max(28, textWidth(inline(item)) + 12)));
    if (v.x || !cells.length) cells.push(v.x ? 28 : 48);
    const indexed = v.t === "list" || v.t === "tuple";
    return {kind: "seq", cells, indexed, w: cells.reduce((a, b) => a + b, 0), h: LABEL + (indexed ? INDEX : 0) + ROW};
  }

  function renderDiagram(i) {
    const box = $("diagram");
    box.textContent = "";
    const all = stacks[i];
    const frames = all.slice(-MAX_DIAGRAM_FRAMES);
    const root = svg("svg", {xmlns: SVG_NS, id: "memory"});
    const defs = svg("defs");
    const marker = svg("marker", {id: "head", viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7",
                                  markerHeight: "7", orient: "auto-start-reverse"});
    marker.appendChild(svg("path", {d: "M0,0 L10,5 L0,10 z", fill: "var(--arrow)"}));
    defs.appendChild(marker);
    root.appendChild(defs);
    const arrowLayer = svg("g", {class: "arrows"});
    const boxLayer = svg("g");
    root.appendChild(boxLayer);
    root.appendChild(arrowLayer);

    // At a return, the frame being left shows what it returns, as a last row.
    const returned = steps[i][3] === KIND_RETURN && steps[i].length > 9 ? value(steps[i][9]) : undefined;
    const rowsOf = (f, k) => {
      const rows = f.names.map((name, n) => [T.names[name], value(f.values[n])]);
      if (k === frames.length - 1 && returned !== undefined) rows.push(["return", returned]);
      return rows;
    };
    const objects = collectObjects(frames, returned);
    // Frames.
    let nameW = 40, valueW = 40, titleW = 80;
    frames.forEach((f, k) => {
      titleW = Math.max(titleW, textWidth(codeName(f.code)) + 20);
      for (const [nameText, v] of rowsOf(f, k)) {
        nameW = Math.max(nameW, textWidth(nameText) + 14);
        valueW = Math.max(valueW, boxed(v) ? 36 : textWidth(inline(v)) + 14);
      }
    });
    const frameW = Math.max(titleW, nameW + valueW + 8);  // + the margin right of the value cells
    const pending = [];  // references to draw: {x, y, key, from}
    let y = 8;
    if (all.length > frames.length) {
      boxLayer.appendChild(svg("text", {x: 8, y: y + 10, class: "note"}, (all.length - frames.length) + " outer frames not shown"));
      y += 20;
    }
    frames.forEach((f, k) => {
      const isTop = k === frames.length - 1;
      const rows = rowsOf(f, k);
      const g = svg("g", {class: "frame", "data-name": codeName(f.code)});
      const h = LABEL + 10 + Math.max(1, rows.length) * ROW;
      g.appendChild(svg("rect", {x: 8, y, width: frameW, height: h, rx: 6, class: "frame-box" + (isTop ? " top" : "")}));
      g.appendChild(svg("text", {x: 16, y: y + 17, class: "frame-name"}, codeName(f.code)));
      let ry = y + LABEL + 8;
      if (!rows.length) g.appendChild(svg("text", {x: 16, y: ry + 16, class: "note"}, "no locals"));
      rows.forEach(([nameText, v], n) => {
        const isReturn = n === f.names.length;
        const row = svg("g", isReturn ? {class: "return-value"} : {class: "var", "data-var": nameText});
        row.appendChild(svg("text", {x: 8 + nameW - 8, y: ry + 16, "text-anchor": "end",
                                     class: isReturn ? "note" : "var-name"}, nameText));
        const cx = 8 + nameW, cw = frameW - nameW - 8;
        row.appendChild(svg("rect", {x: cx, y: ry + 2, width: cw, height: ROW - 4, class: "cell"}));
        if (boxed(v)) {
          const key = objectKey(v);
          row.setAttribute("data-ref", key);
          row.appendChild(svg("circle", {cx: cx + cw / 2, cy: ry + ROW / 2, r: 3.5, class: "dot"}));
          pending.push({x: cx + cw / 2, y: ry + ROW / 2, key, from: codeName(f.code) + ":" + nameText, depth: 0});
        } else {
          row.appendChild(svg("text", {x: cx + 6, y: ry + 16, class: "prim"}, inline(v)));
        }
        g.appendChild(row);
        ry += ROW;
      });
      boxLayer.appendChild(g);
      y += h + 14;
    });
    let bottom = y;

    // Objects, placed in columns by distance from the frames, each near its first reference.
    const placed = new Map();
    const columns = [];  // {y, w}
    let queue = pending.slice(), hidden = 0;
    const arrows = [];
    while (queue.length) {
      const next = [];
      for (const ref of queue) {
        arrows.push(ref);
        if (placed.has(ref.key)) continue;
        if (placed.size >= MAX_OBJECTS) { hidden++; continue; }
        const v = objects.get(ref.key);
        const shape = objectShape(v);
        const col = columns[ref.depth] || (columns[ref.depth] = {y: 8, w: 0});
        const oy = Math.max(col.y, ref.y - LABEL - ROW / 2);
        const obj = {v, shape, col: ref.depth, y: oy};
        placed.set(ref.key, obj);
        col.y = oy + shape.h + GAP_Y;
        col.w = Math.max(col.w, shape.w, textWidth(v.t) + 40);
        if (isContainer(v)) {
          // Children hang off this box; their reference points are fixed once x is known.
          v.v.forEach((item, n) => {
            if (boxed(item)) next.push({parent: ref.key, slot: n, key: objectKey(item), y: oy + shape.h / 2, depth: ref.depth + 1});
          });
        }
      }
      queue = next;
    }
    let x = 8 + frameW + GAP_X;
    for (const col of columns) {
      col.x = x;
      x += col.w + GAP_X;
    }
    const right = Math.max(columns.length ? x - GAP_X + 8 : 8 + frameW + 8, 240);  // room for the notes

    for (const [key, obj] of placed) {
      const {v, shape} = obj;
      const ox = columns[obj.col].x, oy = obj.y;
      obj.x = ox;
      obj.cells = [];
      const g = svg("g", {class: "obj", "data-key": key, "data-id": String(v.id), "data-type": v.t});
      const size = isContainer(v) && (v.x || v.n !== v.v.length / (v.t === "dict" ? 2 : 1)) ? " (" + v.n + " items)" : "";
      if (shape.kind !== "object") g.appendChild(svg("text", {x: ox, y: oy + 11, class: "obj-type"}, v.t + size));
      const top = oy + LABEL;
      if (shape.kind === "object") {
        g.appendChild(svg("rect", {x: ox, y: top, width: shape.w, height: shape.h - LABEL, rx: 4, class: "obj-box"}));
        g.appendChild(svg("text", {x: ox + 10, y: top + 16, class: "prim", "font-weight": "bold"}, v.t));
        if (shape.body) g.appendChild(svg("text", {x: ox + 10, y: top + 16 + ROW - 6, class: "prim"}, shape.body));
      } else if (shape.kind === "dict") {
        g.appendChild(svg("rect", {x: ox, y: top, width: shape.w, height: shape.h - LABEL, rx: 4, class: "obj-box dict"}));
        let ry = top;
        for (let k = 0; k < v.v.length; k += 2) {
          [v.v[k], v.v[k + 1]].forEach((item, side) => {
            const cx = ox + (side ? shape.kw : 0), cw = side ? shape.vw : shape.kw;
            g.appendChild(svg("rect", {x: cx + 2, y: ry + 2, width: cw - 4, height: ROW - 4, class: "cell"}));
            obj.cells[k + side] = {x: cx + cw / 2, y: ry + ROW / 2};
            if (boxed(item)) g.appendChild(svg("circle", {cx: cx + cw / 2, cy: ry + ROW / 2, r: 3.5, class: "dot"}));
            else g.appendChild(svg("text", {x: cx + 7, y: ry + 16, class: "prim"}, inline(item)));
          });
          ry += ROW;
        }
        if (v.x) g.appendChild(svg("text", {x: ox + 8, y: ry + 16, class: "note"}, "\u2026"));
        if (!v.v.length && !v.x) g.appendChild(svg("text", {x: ox + 8, y: ry + 16, class: "note"}, "empty"));
      } else {
        const rowTop = top + (shape.indexed ? INDEX : 0);
        g.appendChild(svg("rect", {x: ox, y: rowTop, width: shape.w, height: ROW, rx: 3, class: "obj-box " + v.t}));
        let cx = ox;
        shape.cells.forEach((cw, n) => {
          const item = v.v[n];
          if (n < v.v.length) {
            if (shape.indexed) g.appendChild(svg("text", {x: cx + cw / 2, y: top + 8, "text-anchor": "middle", class: "index"}, String(n)));
            g.appendChild(svg("rect", {x: cx + 2, y: rowTop + 2, width: cw - 4, height: ROW - 4, class: "cell"}));
            obj.cells[n] = {x: cx + cw / 2, y: rowTop + ROW / 2};
            if (boxed(item)) g.appendChild(svg("circle", {cx: cx + cw / 2, cy: rowTop + ROW / 2, r: 3.5, class: "dot"}));
            else g.appendChild(svg("text", {x: cx + 6, y: rowTop + 16, class: "prim"}, inline(item)));
          } else {
            g.appendChild(svg("text", {x: cx + 8, y: rowTop + 16, class: "note"}, v.v.length ? "\u2026" : "empty"));
          }
          cx += cw;
        });
      }
      boxLayer.appendChild(g);
      bottom = Math.max(bottom, oy + shape.h + 8);
    }

    for (const ref of arrows) {
      const target = placed.get(ref.key);
      if (!target) continue;
      let from = ref;
      if (ref.parent !== undefined) {
        const parent = placed.get(ref.parent);
        if (!parent || !parent.cells[ref.slot]) continue;
        from = parent.cells[ref.slot];
      }
      const tx = target.x, ty = target.y + LABEL + (target.shape.indexed ? INDEX : 0) + ROW / 2;
      let d;
      if (tx > from.x + 20) {
        const bend = Math.max(30, (tx - from.x) / 2);
        d = `M${from.x},${from.y} C${from.x + bend},${from.y} ${tx - bend},${ty} ${tx - 1},${ty}`;
      } else {
        // A box in the same or an earlier column (a container holding one drawn before it):
        // arrive at its top or bottom edge rather than crossing it.
        const above = target.y + target.shape.h < from.y;
        const ex = tx + Math.min(18, target.shape.w / 2), ey = above ? target.y + target.shape.h + 1 : target.y + LABEL - 1;
        const lift = above ? -40 : 40;
        d = `M${from.x},${from.y} C${from.x},${from.y + lift} ${ex},${ey - lift} ${ex},${ey}`;
      }
      arrowLayer.appendChild(svg("path", {d, class: "arrow", "marker-end": "url(#head)",
                                         "data-from": ref.from || ref.parent + "[" + ref.slot + "]", "data-to": ref.key}));
    }
    if (hidden) {
      boxLayer.appendChild(svg("text", {x: 8, y: bottom + 12, class: "note"}, hidden + " more references to objects not drawn"));
      bottom += 20;
    }
    root.setAttribute("width", right);
    root.setAttribute("height", bottom);
    root.setAttribute("viewBox", `0 0 ${right} ${bottom}`);
    box.appendChild(root);
  }

  // ---- timeline --------------------------------------------------------------------------
  // One band per thread, one lane per stack level; x is the step index, like the slider.
  const LANE = 14, MAX_LANES = 16, LABEL_W = 110;
  let cursor = null, timelineWidth = 0;
  const stepX = (i) => LABEL_W + (i / Math.max(1, steps.length)) * (timelineWidth - LABEL_W - 8);
  function hue(text) {
    let h = 0;
    for (const ch of text) h = (h * 31 + ch.charCodeAt(0)) % 360;
    return h;
  }
  function renderTimeline() {
    const box = $("timeline");
    box.textContent = "";
    timelineWidth = Math.max(600, box.clientWidth);
    const order = [...threads.keys()];
    let y = 4;
    const bandTop = new Map();
    for (const t of order) {
      bandTop.set(t, y + 14);
      y += 14 + Math.min(MAX_LANES, threads.get(t).lanes) * LANE + 8;
    }
    const root = svg("svg", {width: timelineWidth, height: y, id: "calls"});
    for (const t of order) {
      root.appendChild(svg("text", {x: 4, y: bandTop.get(t) - 3, class: "lane-label"}, clip(threadName(t), 16)));
      if (threads.get(t).lanes > MAX_LANES)
        root.appendChild(svg("text", {x: LABEL_W, y: bandTop.get(t) - 3, class: "note"}, "calls deeper than " + MAX_LANES + " levels not shown"));
    }
    const tiny = spans.length > 4000;  // then sub-pixel calls are left out: they could not be clicked anyway
    for (const span of spans) {
      if (span.lane >= MAX_LANES) continue;
      const x0 = stepX(span.start), x1 = stepX(span.end + 1);
      if (tiny && x1 - x0 < 1) continue;
      const name = codeName(span.code);
      const rect = svg("rect", {x: x0, y: bandTop.get(span.thread) + span.lane * LANE, width: Math.max(1, x1 - x0), height: LANE - 1,
                                class: "span", fill: `hsl(${hue(name)},55%,72%)`, "data-start": span.start, "data-func": name});
      rect.appendChild(svg("title", {}, name + " (steps " + steps[span.start][0] + "\u2013" + steps[span.end][0] + ")"));
      root.appendChild(rect);
      if (x1 - x0 > textWidth(name) * 0.75 + 8)
        root.appendChild(svg("text", {x: x0 + 3, y: bandTop.get(span.thread) + span.lane * LANE + 10, "pointer-events": "none"}, clip(name, Math.floor((x1 - x0 - 6) / 6))));
    }
    cursor = svg("line", {y1: 0, y2: y, class: "cursor"});
    root.appendChild(cursor);
    root.addEventListener("click", (e) => {
      const start = e.target.getAttribute && e.target.getAttribute("data-start");
      if (start !== null && start !== undefined) go(Number(start));
    });
    box.appendChild(root);
  }
  function moveCursor(i) {
    const x = stepX(i + 0.5);
    cursor.setAttribute("x1", x);
    cursor.setAttribute("x2", x);
  }

  // ---- drawing a step --------------------------------------------------------------------
  function render() {
    const i = current, s = steps[i];
    slider.value = i;
    const seconds = (s[1] / 1e9).toFixed(6);
    $("position").innerHTML = "";
    $("position").append("step ", el("b", {id: "seq"}, String(s[0])), " \u00b7 " + (i + 1) + "/" + steps.length + " \u00b7 " + seconds + " s");
    renderSource(s);
    renderStack(i);
    renderDiagram(i);
    moveCursor(i);
  }

  if (!steps.length) {
    $("source").appendChild(el("div", {class: "unavailable"}, "No steps in this range of the recording."));
    return;
  }
  renderTimeline();
  window.addEventListener("resize", () => {
    renderTimeline();
    moveCursor(current);
  });
  fromHash();
})();
