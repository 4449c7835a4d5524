// The supervisors' wallboard: the server pushes the whole board ("board" events over SSE);
// this script only draws it and sends the supervisor's actions. Nothing is polled.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const mayListen = document.body.dataset.mayListen === "yes";
  const STATES = ["ready", "ringing", "talking", "wrap_up", "paused", "logged_out"];

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  function seconds(value) {
    if (value === null || value === undefined) return "—";
    const s = Math.round(value);
    return s < 60 ? s + " с" : Math.floor(s / 60) + " мин " + (s % 60) + " с";
  }
  function percent(share) {
    return share === null || share === undefined ? "—" : Math.round(share * 1000) / 10 + " %";
  }
  function verdict(node, ok) {
    node.classList.remove("ok", "bad");
    if (ok === true) node.classList.add("ok");
    if (ok === false) node.classList.add("bad");
  }
  function say(text, error) {
    $("message").textContent = text;
    $("message").className = error ? "error" : "";
  }

  function drawToday(today, targets) {
    $("today-offered").textContent = today.offered;
    $("today-answered").textContent = today.answered;
    $("today-abandoned").textContent = today.abandoned;
    $("today-asa").textContent = seconds(today.asa);
    verdict($("today-asa"), today.asa_ok);
    $("today-sl").textContent = percent(today.service_level);
    verdict($("today-sl"), today.service_level_ok);
    $("today-abandon-rate").textContent = percent(today.abandon_rate);
    verdict($("today-abandon-rate"), today.abandon_rate_ok);
    $("target-asa").textContent = "цель: не более " + targets.asa_seconds + " с";
    $("target-sl").textContent = "цель: " + percent(targets.service_level) + " за " + targets.service_level_seconds + " с";
    $("target-abandon").textContent = "цель: не более " + percent(targets.abandon_rate);
  }

  function drawAlarms(alarms) {
    const list = $("alarms");
    list.replaceChildren();
    if (!alarms.length) list.append(el("li", "Тревог нет", "quiet"));
    for (const alarm of alarms) {
      const item = el("li", alarm.text);
      item.dataset.kind = alarm.kind;
      list.append(item);
    }
  }

  // Rows are kept and updated in place (keyed by id), so a button or a selection survives
  // the pushes; rows of groups or operators that are gone are removed.
  function rowFor(body, id) {
    let row = document.getElementById(id);
    if (!row) {
      row = el("tr");
      row.id = id;
      body.append(row);
    }
    row.dataset.seen = "1";
    return row;
  }
  function cells(row, classes) {
    if (row.cells.length !== classes.length) {
      row.replaceChildren(...classes.map((cls) => el("td", null, cls)));
    }
    return row.cells;
  }
  function put(cell, text) {
    const value = String(text);
    if (cell.textContent !== value) cell.textContent = value;
  }
  function sweep(body) {
    for (const row of Array.from(body.rows)) {
      if (row.dataset.seen !== "1") row.remove();
      delete row.dataset.seen;
    }
  }

  const QUEUE_CELLS = ["name", "num waiting", "num longest", "num expected"]
    .concat(STATES.map((s) => "num state-" + s))
    .concat(["num answered", "num abandoned", "num asa", "num sl"]);

  function drawQueues(queues) {
    const body = $("queues").tBodies[0];
    for (const q of queues) {
      const row = rowFor(body, "queue-" + q.group);
      row.className = q.open ? "" : "closed";
      const c = cells(row, QUEUE_CELLS);
      put(c[0], q.name + (q.open ? "" : " (закрыта)"));
      put(c[1], q.waiting);
      put(c[2], seconds(q.longest_wait));
      put(c[3], q.expected_wait === null ? "нет операторов" : seconds(q.expected_wait));
      STATES.forEach((state, i) => {
        let text = String(q.states[state] || 0);
        if (state === "paused") {
          const reasons = Object.entries(q.pause_reasons).map(([r, n]) => r + ": " + n);
          if (reasons.length) text += " (" + reasons.join(", ") + ")";
        }
        put(c[4 + i], text);
      });
      const n = 4 + STATES.length;
      put(c[n], q.today.answered);
      put(c[n + 1], q.today.abandoned);
      put(c[n + 2], seconds(q.today.asa));
      verdict(c[n + 2], q.today.asa_ok);
      put(c[n + 3], percent(q.today.service_level));
      verdict(c[n + 3], q.today.service_level_ok);
    }
    sweep(body);
  }

  function button(text, cls, action) {
    const b = el("button", text, cls);
    b.type = "button";
    b.addEventListener("click", action);
    return b;
  }

  async function send(url, body) {
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(body || {}),
        credentials: "same-origin",
      });
      const answer = await response.json().catch(() => ({}));
      if (!response.ok) {
        say(answer.error || "Ошибка " + response.status, true);
        return;
      }
      say(answer.message || "Выполнено.", false);
    } catch (error) {
      say("Нет связи с сервером.", true);
    }
  }

  function spy(callId, mode) {
    send("/api/supervisor/calls/" + encodeURIComponent(callId) + "/" + mode);
  }
  function act(opId, action, extra) {
    const why = $("why").value.trim();
    send("/api/operators/" + encodeURIComponent(opId) + "/" + action, Object.assign({ why: why }, extra || {}));
  }

  function actionsOf(op) {
    const list = [];
    if (op.call_id && mayListen) list.push("listen", "whisper", "barge");
    if (mayListen && (op.state === "ready" || op.state === "wrap_up")) list.push("pause");
    if (mayListen && ["ready", "wrap_up", "paused"].includes(op.state)) list.push("logout");
    return list;
  }
  const ACTIONS = {
    listen: ["Слушать", (op) => spy(op.call_id, "listen")],
    whisper: ["Подсказать", (op) => spy(op.call_id, "whisper")],
    barge: ["Вмешаться", (op) => spy(op.call_id, "barge")],
    pause: ["Пауза", (op) => act(op.id, "pause", { reason: "по решению руководителя" })],
    logout: ["Вывести из линии", (op) => act(op.id, "logout")],
  };

  function drawOperators(operators) {
    const body = $("operators").tBodies[0];
    for (const op of operators) {
      const row = rowFor(body, "op-" + op.id);
      row.dataset.state = op.state;
      const c = cells(row, ["name", "state", "groups", "call", "actions"]);
      put(c[0], op.name + " (" + op.id + ")");
      let state = op.state_title;
      if (op.pause_reason) state += ": " + op.pause_reason;
      if (op.seconds_left !== null && op.state === "wrap_up") state += ", осталось " + op.seconds_left + " с";
      put(c[1], state);
      c[1].className = "state state-" + op.state;
      put(c[2], op.groups.join(", "));
      put(c[3], op.call_id || "");
      const wanted = actionsOf(op);
      const signature = wanted.join(" ") + "|" + (op.call_id || "");
      if (c[4].dataset.signature !== signature) {
        c[4].dataset.signature = signature;
        c[4].replaceChildren(...wanted.map((name) => button(ACTIONS[name][0], name, () => ACTIONS[name][1](op))));
      }
    }
    sweep(body);
  }

  function draw(board) {
    drawAlarms(board.alarms);
    drawToday(board.today, board.targets);
    drawQueues(board.queues);
    drawOperators(board.operators);
    const now = new Date();
    $("link").textContent = "Данные на " + now.toLocaleTimeString("ru-RU");
    $("link").className = "";
    document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
  }

  const events = new EventSource("/supervisor/wallboard/events");
  events.addEventListener("board", (e) => draw(JSON.parse(e.data)));
  events.addEventListener("error", () => {
    $("link").textContent = "Нет связи с сервером: табло не обновляется, переподключение…";
    $("link").className = "down";
  });
})();
