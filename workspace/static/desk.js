// The operator's desktop: events pushed by the controller (SSE), the state bar, the wrap-up
// form and search. Plain JavaScript, served by the controller; nothing from outside.
"use strict";
(function () {
  const operator = document.body.dataset.operator;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  let contactNumber = null;

  function say(text) { $("message").textContent = text || ""; }

  async function send(method, url, body) {
    const response = await fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = {};
    try { data = await response.json(); } catch (e) { data = {}; }
    if (!response.ok) { throw new Error(data.error || ("Ошибка " + response.status)); }
    return data;
  }

  async function act(action, body) {
    try {
      await send("POST", "/api/operators/" + encodeURIComponent(operator) + "/" + action, body || {});
      say("");
    } catch (error) { say(error.message); }
  }

  // The state bar follows the controller's pushed `state` events; only the wrap-up (and
  // ring) countdown ticks here, from the seconds the controller sent.
  const STATES = {
    logged_out: "не в линии", ready: "готов", paused: "пауза", ringing: "звонок",
    talking: "разговор", wrap_up: "обработка",
  };
  let countdown = null;
  function showState(data) {
    if (countdown) { clearInterval(countdown); countdown = null; }
    let text = "Состояние: " + (STATES[data.state] || data.state);
    if (data.pause_reason) { text += " (" + data.pause_reason + ")"; }
    document.body.dataset.state = data.state;
    const left = data.seconds_left;
    if (left === null || left === undefined || data.state !== "wrap_up") {
      $("state").textContent = text;
      return;
    }
    const ends = Date.now() + left * 1000;
    const tick = () => {
      const seconds = Math.max(0, Math.round((ends - Date.now()) / 1000));
      $("state").textContent = text + ", осталось " + seconds + " с";
      if (!seconds && countdown) { clearInterval(countdown); countdown = null; }
    };
    tick();
    countdown = setInterval(tick, 1000);
  }

  async function loadTargets() {
    try {
      const data = await send("GET", "/api/operators/" + encodeURIComponent(operator) + "/targets");
      const options = (select, items) => {
        select.replaceChildren();
        items.forEach((item) => {
          const option = document.createElement("option");
          option.value = item.id; option.textContent = item.name + " (" + item.id + ")";
          select.append(option);
        });
      };
      options($("transfer-group"), data.groups);
      options($("agency"), data.agencies);
    } catch (error) { say(error.message); }
  }

  function fill(id, value) { $(id).textContent = value || "—"; }

  function showPop(pop) {
    fill("pop-line", pop.line); fill("pop-phone", pop.caller_phone); fill("pop-group", pop.group);
    fill("pop-topic", pop.topic); fill("pop-path", pop.menu_path);
    fill("pop-application", pop.application_number); fill("pop-status", pop.application_status);
    fill("pop-waited", pop.waited_seconds + " с");
    $("callback-phone").value = pop.caller_phone || "";
    fill("pop-about", pop.about ? pop.about.number + " · " + pop.about.category +
      (pop.about.resolution ? " · " + pop.about.resolution : "") : "");
    $("pop-repeat").hidden = !pop.repeat;
    const entries = $("pop-entries");
    entries.replaceChildren();
    Object.entries(pop.entries).forEach(([name, value]) => {
      const dt = document.createElement("dt"); dt.textContent = name;
      const dd = document.createElement("dd"); dd.textContent = value;
      entries.append(dt, dd);
    });
    listContacts($("pop-history"), pop.history);
    $("pop").hidden = false;
    $("pop").dataset.call = pop.call_id;
  }

  function listContacts(list, contacts) {
    list.replaceChildren();
    contacts.forEach((c) => {
      const item = document.createElement("li");
      const when = new Date(c.opened_at).toLocaleString("ru-RU");
      item.textContent = c.number + " · " + when + " · " + (c.category_title || c.category) +
        (c.resolution ? " · " + c.resolution : "") + (c.repeat ? " · повторное" : "");
      list.append(item);
    });
    if (!contacts.length) {
      const item = document.createElement("li"); item.textContent = "нет"; list.append(item);
    }
  }

  function showContact(event) {
    contactNumber = event.number;
    $("contact").dataset.call = event.call_id;
    $("contact-number").textContent = event.number;
    $("contact").hidden = false;
    $("resolution").focus();
  }

  const events = new EventSource("/desk/events");
  events.addEventListener("pop", (e) => { showPop(JSON.parse(e.data)); });
  events.addEventListener("pop_withdrawn", (e) => {
    if ($("pop").dataset.call === JSON.parse(e.data).call_id) { $("pop").hidden = true; }
  });
  events.addEventListener("contact", (e) => { showContact(JSON.parse(e.data)); });
  events.addEventListener("state", (e) => { showState(JSON.parse(e.data)); });

  $("ready").addEventListener("click", () => act("ready"));
  $("pause").addEventListener("click", () => act("pause", { reason: $("pause-reason").value }));
  $("wrap-up-done").addEventListener("click", () => act("wrap-up-done"));
  $("logout").addEventListener("click", () => act("logout"));

  $("wrap-up").addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!contactNumber) { say("Нет открытого обращения."); return; }
    try {
      await send("POST", "/desk/api/contacts/" + contactNumber + "/wrap-up", {
        category: $("category").value,
        resolution: $("resolution").value,
        resolved: $("resolved").checked,
      });
      say("Обращение " + contactNumber + " сохранено.");
    } catch (error) { say(error.message); }
  });
  $("resolution").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && e.ctrlKey) { $("wrap-up").requestSubmit(); }
  });

  $("transfer").addEventListener("submit", (e) => {
    e.preventDefault();
    act("transfer", { group: $("transfer-group").value });
  });
  $("escalate").addEventListener("submit", (e) => {
    e.preventDefault();
    act("escalate", { agency: $("agency").value });
  });
  $("callback").addEventListener("submit", async (e) => {
    e.preventDefault();
    const zoned = (value) => value ? new Date(value).toISOString() : undefined;
    try {
      await send("POST", "/api/callbacks", {
        phone: $("callback-phone").value,
        group: $("pop-group").textContent,
        window_start: zoned($("callback-from").value),
        window_end: zoned($("callback-to").value),
      });
      say("Перезвон заказан.");
    } catch (error) { say(error.message); }
  });

  $("search").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const data = await send("GET", "/desk/api/search?q=" + encodeURIComponent($("query").value));
      listContacts($("results"), data.contacts);
      say("");
    } catch (error) { say(error.message); }
  });

  // Alt+R / Alt+P / Alt+W / Alt+T / Alt+F work in every browser, accesskey or not.
  document.addEventListener("keydown", (e) => {
    if (!e.altKey || e.ctrlKey) { return; }
    const key = e.key.toLowerCase();
    const target = { r: "ready", p: "pause", w: "wrap-up-done", "к": "ready", "з": "pause", "ц": "wrap-up-done" }[key];
    if (target) { e.preventDefault(); $(target).click(); }
    if (key === "t" || key === "е") { e.preventDefault(); $("transfer").requestSubmit(); }
    if (key === "f" || key === "а") { e.preventDefault(); $("query").focus(); }
  });

  loadTargets();
})();
