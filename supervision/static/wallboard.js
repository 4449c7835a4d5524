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

  function drawQueues(queues) {
    const body = $("queues").tBodies[0];
    body.replaceChildren();
    for (const q of queues) {
      const row = el("tr", null, q.open ? "" : "closed");
      row.id = "queue-" + q.group;
      row.append(el("td", q.name + (q.open ? "" : " (закрыта)"), "name"));
      row.append(el("td", q.waiting, "num waiting"));
      row.append(el("td", seconds(q.longest_wait), "num longest"));
      row.append(el("td", q.expected_wait === null ? "нет операторов" : seconds(q.expected_wait), "num expected"));
      for (const state of STATES) {
        let text = String(q.states[state] || 0);
        if (state === "paused") {
          const reasons = Object.entries(q.pause_reasons).map(([r, n]) => r + ": " + n);
          if (reasons.length) text += " (" + reasons.join(", ") + ")";
        }
        row.append(el("td", text, "num state-" + state));
      }
      row.append(el("td", q.today.answered, "num answered"));
      row.append(el("td", q.today.abandoned, "num abandoned"));
      const asa = el("td", seconds(q.today.asa), "num asa");
      verdict(asa, q.today.asa_ok);
      const sl = el("td", percent(q.today.service_level), "num sl");
      verdict(sl, q.today.service_level_ok);
      row.append(asa, sl);
      body.append(row);
    }
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

  function drawOperators(operators) {
    const body = $("operators").tBodies[0];
    body.replaceChildren();
    for (const op of operators) {
      const row = el("tr");
      row.id = "op-" + op.id;
      row.dataset.state = op.state;
      row.append(el("td", op.name + " (" + op.id + ")"));
      let state = op.state_title;
      if (op.pause_reason) state += ": " + op.pause_reason;
      if (op.seconds_left !== null && op.state === "wrap_up") state += ", осталось " + op.seconds_left + " с";
      row.append(el("td", state, "state state-" + op.state));
      row.append(el("td", op.groups.join(", ")));
      row.append(el("td", op.call_id || "", "call"));
      const actions = el("td", null, "actions");
      if (op.call_id && mayListen) {
        actions.append(
          button("Слушать", "listen", () => spy(op.call_id, "listen")),
          button("Подсказать", "whisper", () => spy(op.call_id, "whisper")),
          button("Вмешаться", "barge", () => spy(op.call_id, "barge")),
        );
      }
      if (mayListen && (op.state === "ready" || op.state === "wrap_up")) {
        actions.append(button("Пауза", "pause", () => act(op.id, "pause", { reason: "по решению руководителя" })));
      }
      if (mayListen && op.state !== "logged_out" && op.state !== "talking" && op.state !== "ringing") {
        actions.append(button("Вывести из линии", "logout", () => act(op.id, "logout")));
      }
      row.append(actions);
      body.append(row);
    }
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
