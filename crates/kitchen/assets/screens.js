// Live screens: the operator list, a kitchen station, and the customer board.
// Each draws itself from a snapshot and then applies order events from a Server-Sent Events stream.
// Whatever ends the stream (a restart, a network drop, an error) the screen reopens it after a growing pause of at
// most 10 s, showing an offline banner meanwhile; every connection opens with a fresh snapshot, so nothing missed
// stays missing. A staff screen whose sign-in ended goes to the sign-in form and comes back.
(() => {
  const root = document.getElementById("screen");
  if (!root) return;
  const mode = root.dataset.mode;
  const unit = root.dataset.unit;
  const station = Number(root.dataset.station || 0);
  const canChange = root.dataset.canChange === "true";
  const en = root.dataset.lang === "en";
  const params = new URLSearchParams(location.search);
  const FRESH_MS = 15000;

  let state = null;
  let clockOffset = 0;
  const orders = new Map();
  const freshUntil = new Map();

  const text = (ru, english) => (en ? english : ru);
  const now = () => Date.now() + clockOffset;
  const statusOf = (id) => state.statuses.find((s) => s.id === id);
  const isActive = (order) => {
    const status = statusOf(order.status_id);
    return status && status.shown && !status.finished && order.business_day === state.day;
  };
  const quantity = (value) => String(Math.round(value * 1000) / 1000);
  // How long ago, as a person reads it at a glance: "3 мин", "1 ч 05 мин".
  const age = (ms) => {
    const minutes = Math.max(0, Math.floor((now() - ms) / 60000));
    if (minutes < 60) return text(`${minutes} мин`, `${minutes} min`);
    const rest = String(minutes % 60).padStart(2, "0");
    return text(`${Math.floor(minutes / 60)} ч ${rest} мин`, `${Math.floor(minutes / 60)} h ${rest} min`);
  };
  // An order longer in its status than the status allows turns amber, red at twice that.
  const alertOf = (order) => {
    const limit = (statusOf(order.status_id) || {}).alert_minutes;
    if (!limit) return "";
    const minutes = (now() - order.status_changed_ms) / 60000;
    return minutes >= 2 * limit ? " late" : minutes >= limit ? " waiting" : "";
  };
  const clock = (ms) => {
    const d = new Date(ms);
    return `${d.getHours()}:${String(d.getMinutes()).padStart(2, "0")}`;
  };
  // Black or white text, whichever contrasts more with the status colour (WCAG 2 relative luminance): one of the
  // two always reaches 4.5:1, whatever colour an admin picks.
  const probe = document.createElement("span");
  const textColorFor = (color) => {
    probe.style.color = color;
    document.body.appendChild(probe);
    const rgb = getComputedStyle(probe).color.match(/[\d.]+/g) || [128, 128, 128];
    probe.remove();
    const channel = (value) => {
      const c = Number(value) / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    };
    const [r, g, b] = rgb.slice(0, 3).map(channel);
    const luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    return (luminance + 0.05) / 0.05 >= 1.05 / (luminance + 0.05) ? "#000" : "#fff";
  };
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (key === "style") Object.assign(node.style, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children) node.append(child);
    return node;
  };

  function setLink(ok) {
    const node = document.getElementById("link-state");
    if (node) {
      node.textContent = ok ? "" : text("Нет связи — переподключение…", "Offline — reconnecting…");
      node.hidden = ok;
    }
    root.classList.toggle("offline", !ok);
  }

  function applySnapshot(snapshot) {
    state = snapshot;
    clockOffset = snapshot.now_ms - Date.now();
    orders.clear();
    for (const order of snapshot.orders) orders.set(order.id, order);
    render();
  }

  function applyOrder(order) {
    if (!state) return;
    if (order.business_day > state.day) {
      // A new business day began: start over from the server's view of it.
      reconnect();
      return;
    }
    const previous = orders.get(order.id);
    const becameReady = order.status_id === state.ready_status_id && (!previous || previous.status_id !== order.status_id);
    if (becameReady) {
      freshUntil.set(order.id, now() + FRESH_MS);
      if (mode === "board") chime();
      setTimeout(render, FRESH_MS + 50);
    }
    // A new order for this kitchen station rings there.
    if (!previous && mode === "kitchen" && order.lines.some((line) => line.station_id === station)) chime();
    orders.set(order.id, order);
    render();
  }

  // Sound: a browser plays only after a tap on the page, so a screen's sound is switched on with one tap on its
  // button, and remembered on that screen (after a reload the button asks for one more tap if the browser wants it).
  const SOUND_KEY = "tillwire.sound";
  let soundWanted = localStorage.getItem(SOUND_KEY) === "on" || params.has("chime");
  let audio = null;
  const soundButton = el("button", { type: "button", class: "sound-toggle", onclick: toggleSound });
  function showSound() {
    const playing = soundWanted && audio && audio.state === "running";
    soundButton.setAttribute("aria-pressed", String(Boolean(soundWanted)));
    soundButton.textContent = playing
      ? text("♪ Звук включён", "♪ Sound on")
      : soundWanted
        ? text("♪ Нажмите, чтобы включить звук", "♪ Tap to turn the sound on")
        : text("♪ Включить звук", "♪ Turn the sound on");
  }
  function startAudio() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      audio.resume().then(showSound, showSound);
    } catch (_) { /* no audio on this device: the highlight still shows */ }
  }
  function toggleSound() {
    soundWanted = !(soundWanted && audio && audio.state === "running");
    localStorage.setItem(SOUND_KEY, soundWanted ? "on" : "off");
    if (soundWanted) startAudio();
    showSound();
  }
  if (mode !== "operator") {
    root.append(soundButton);
    if (soundWanted) startAudio();
    showSound();
  }

  function chime() {
    if (!soundWanted || !audio || audio.state !== "running") return;
    const tone = audio.createOscillator();
    const gain = audio.createGain();
    tone.frequency.value = 880;
    gain.gain.setValueAtTime(0.2, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.6);
    tone.connect(gain).connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + 0.6);
  }


  // Posts a screen's action; the answer is the order as it is now. Resolves to it, or to null after saying why.
  async function post(url, data) {
    try {
      const order = await window.tillwire.post(url, data);
      applyOrder(order);
      return order;
    } catch (error) {
      if (error.code === "login_required") window.tillwire.signIn();
      else window.tillwire.notice(error.message);
      return null;
    }
  }

  // Undo: the screen remembers its own last moves, and for the recall window (the server checks it too) offers to
  // take each back; the server records the undo as a move of its own.
  const RECALL_MS = Number(root.dataset.recallMinutes || 0) * 60000;
  const RECALL_SHOWN = 3;
  let recent = [];
  const recallBar = el("div", { class: "recall-bar", id: "recall" });
  if (mode !== "board" && RECALL_MS > 0) root.append(recallBar);
  function remember(move) {
    if (RECALL_MS <= 0) return;
    recent = [move, ...recent.filter((m) => !(m.id === move.id && m.station === move.station))].slice(0, RECALL_SHOWN);
    renderRecall();
  }
  function renderRecall() {
    recent = recent.filter((m) => now() - m.at < RECALL_MS);
    recallBar.replaceChildren(...recent.map((move) => el("button", {
      type: "button", class: "recall", "data-order": move.id,
      onclick: async () => {
        recent = recent.filter((m) => m !== move);
        renderRecall();
        const url = move.station
          ? `/orders/${move.id}/stations/${move.station}/recall`
          : `/orders/${move.id}/recall`;
        await post(url, move.station ? {} : { seen: move.to });
      },
    }, el("i", { class: "bi bi-arrow-counterclockwise" }),
      move.station
        ? text(`Вернуть № ${move.number} на кухню`, `Undo: No. ${move.number} back to the kitchen`)
        : text(`Вернуть № ${move.number} в «${move.fromName}»`, `Undo: No. ${move.number} back to “${move.fromName}”`))));
    recallBar.hidden = recent.length === 0;
  }

  // After a tap an order's row or card stays as it was, greyed and disabled, for a moment: a second tap lands on
  // it instead of on the next status's button in the same spot, or on the next card sliding under the finger.
  const HOLD_MS = 1200;
  const held = new Map();
  function hold(order) {
    held.set(order.id, { ...order });
    render();
    setTimeout(() => { held.delete(order.id); render(); }, HOLD_MS);
  }
  const shown = (order) => held.get(order.id) || order;

  // Moving an order to a cancelling status asks first, in the page.
  function confirmCancel(order, status) {
    return new Promise((resolve) => {
      const answer = (yes) => () => { dialog.close(); resolve(yes); };
      const dialog = el("dialog", { class: "confirm-cancel" },
        el("p", {}, text(`Отменить заказ № ${order.number}?`, `Cancel order ${order.number}?`)),
        el("div", { class: "confirm-actions" },
          el("button", { type: "button", class: "keep", onclick: answer(false) }, text("Не отменять", "Keep it")),
          el("button", { type: "button", class: "cancel-order", onclick: answer(true) },
            text(`Да: ${status.name}`, `Yes: ${status.name}`))));
      dialog.addEventListener("close", () => { dialog.remove(); resolve(false); });
      document.body.append(dialog);
      dialog.showModal();
    });
  }

  async function move(order, target) {
    if (target.cancels && !(await confirmCancel(order, target))) return;
    hold(order);
    const moved = await post(`/orders/${order.id}/status`, { next_status: target.id, from_status: order.status_id });
    if (moved) {
      remember({ id: order.id, number: order.number, to: target.id, fromName: (statusOf(order.status_id) || {}).name, at: now() });
    }
  }

  async function stationReady(order) {
    hold(order);
    if (await post(`/orders/${order.id}/stations/${station}/ready`, {})) {
      remember({ id: order.id, number: order.number, station, at: now() });
    }
  }

  function sorted() {
    return [...orders.values()].map(shown).filter(isActive).sort((a, b) => a.created_ms - b.created_ms || a.id - b.id);
  }

  // The operator finds an order by its number as they type it, shows one status only, and puts the newest orders
  // first when the day's list is long; the filter and the order are remembered by the screen.
  const search = document.getElementById("order-search");
  if (search) search.addEventListener("input", () => render());
  const filterBar = document.getElementById("status-filter");
  const NEWEST_KEY = "tillwire.newest-first";
  let statusFilter = 0;
  let newestFirst = localStorage.getItem(NEWEST_KEY) === "on";
  function renderFilter(active) {
    if (!filterBar) return;
    const shownStatuses = state.statuses.filter((s) => s.shown && !s.finished).sort((a, b) => a.id - b.id);
    const option = (id, label, count) => el("button", {
      type: "button", class: "filter", "data-status": id, "aria-pressed": String(statusFilter === id),
      onclick: () => { statusFilter = id; render(); },
    }, `${label} · ${count}`);
    filterBar.replaceChildren(
      option(0, text("Все", "All"), active.length),
      ...shownStatuses.map((s) => option(s.id, s.name, active.filter((o) => o.status_id === s.id).length)),
      el("button", {
        type: "button", class: "filter newest", "aria-pressed": String(newestFirst),
        onclick: () => { newestFirst = !newestFirst; localStorage.setItem(NEWEST_KEY, newestFirst ? "on" : "off"); render(); },
      }, text("Сначала новые", "Newest first")));
  }

  function renderOperator() {
    const list = document.getElementById("orders");
    const wanted = search ? search.value.trim() : "";
    const active = sorted();
    renderFilter(active);
    const picked = active.filter((order) => String(order.number).startsWith(wanted))
      .filter((order) => !statusFilter || order.status_id === statusFilter);
    if (newestFirst) picked.reverse();
    const rows = picked.map((order) => {
      const status = statusOf(order.status_id);
      const buttons = el("span", { class: "actions" });
      if (canChange) {
        const next = state.flows.filter((f) => f.current_status_id === order.status_id).map((f) => statusOf(f.next_status_id)).filter(Boolean);
        for (const target of next.sort((a, b) => a.id - b.id)) {
          buttons.append(el("button", {
            class: "status-button", type: "button", "data-status": target.id, title: target.name,
            onclick: () => move(order, target),
          }, el("i", { class: target.icon, style: { color: target.color } }), el("span", {}, target.name)));
        }
        buttons.append(el("button", {
          class: "status-button reprint", type: "button", title: text("Напечатать билет ещё раз", "Print the ticket again"),
          onclick: () => post(`/orders/${order.id}/reprint`, {}),
        }, el("i", { class: "bi bi-printer" }), el("span", {}, text("Печать", "Reprint"))));
      }
      // The last attempt at printing this order's ticket failed: say so next to its number.
      const failed = order.print_failed
        ? el("i", { class: "bi bi-printer-fill print-failed", title: text("Билет не напечатан", "Ticket not printed") })
        : "";
      const chips = el("span", { class: "chips" });
      for (const part of order.stations) {
        const name = (state.stations.find((s) => s.id === part.station_id) || {}).name || "?";
        chips.append(el("span", { class: part.ready_ms ? "chip ready" : "chip" }, part.ready_ms ? `✓ ${name}` : name));
      }
      return el("div", {
        class: held.has(order.id) ? "order-row held" : "order-row", id: `order-${order.id}`, "data-number": order.number,
        style: { background: status.color, color: textColorFor(status.color) },
      }, el("span", { class: "number" }, String(order.number), posNumber(order), failed), buttons,
        el("span", { class: "status-name" }, status.name, chips,
          el("span", { class: "items" }, order.lines.map((line) => `${line.short_name} × ${quantity(line.quantity)}`).join(", "))),
        el("span", { class: `created${alertOf(order)}` }, clock(order.created_ms), el("small", { class: "age" }, age(order.created_ms))));
    });
    list.replaceChildren(...rows);
    document.getElementById("empty").hidden = rows.length > 0;
  }

  // The statuses from "ready" on (ready, and every status reachable from it): an order the operator moved there
  // is done for the kitchen, whatever its stations said.
  function readyOrBeyond() {
    const reached = new Set(state.ready_status_id ? [state.ready_status_id] : []);
    for (let grown = true; grown;) {
      grown = false;
      for (const flow of state.flows) {
        if (reached.has(flow.current_status_id) && !reached.has(flow.next_status_id)) {
          reached.add(flow.next_status_id);
          grown = true;
        }
      }
    }
    return reached;
  }
  // The number the POS gave the order (iiko's), so staff can match it with the till's screen.
  function posNumber(order) {
    return order.external_number
      ? el("small", { class: "pos-number", title: text("Номер в кассе", "Number at the till") }, `iiko ${order.external_number}`)
      : "";
  }
  // A cancelled order stays on the kitchen screen, struck through, for a minute, so the cook sees it go.
  const CANCELLED_SHOWN_MS = 60000;
  const justCancelled = (order) =>
    (statusOf(order.status_id) || {}).cancels && now() - order.status_changed_ms < CANCELLED_SHOWN_MS;

  function renderKitchen() {
    const list = document.getElementById("orders");
    const done = readyOrBeyond();
    const cancelled = [...orders.values()].filter((order) => order.business_day === state.day && justCancelled(order));
    const cards = [...sorted().filter((order) => !done.has(order.status_id)), ...cancelled]
      .filter((order) => order.stations.some((s) => s.station_id === station && !s.ready_ms))
      .sort((a, b) => a.created_ms - b.created_ms || a.id - b.id)
      .map((order) => {
        if (justCancelled(order)) {
          return el("article", { class: "ticket cancelled", id: `order-${order.id}` },
            el("header", {}, el("b", { class: "number" }, `№ ${order.number}`)),
            el("p", { class: "cancelled-label" }, text("ОТМЕНЁН", "CANCELLED")));
        }
        // Tapping a line crosses it off (or back on); the last line crossed off makes the station ready.
        const lines = order.lines.filter((line) => line.station_id === station)
          .map((line) => el("li", {
            class: line.crossed_ms ? "line crossed" : "line", "data-code": line.code, role: canChange ? "button" : "listitem",
            onclick: () => {
              if (!canChange) return;
              const crossing = !line.crossed_ms;
              const last = crossing && order.lines.filter((l) => l.station_id === station && !l.crossed_ms).length === 1;
              post(`/orders/${order.id}/lines/cross`, { code: line.code, crossed: crossing }).then((after) => {
                if (after && last) remember({ id: order.id, number: order.number, station, at: now() });
              });
            },
          }, el("span", {}, line.short_name), el("b", {}, quantity(line.quantity))));
        const ready = canChange
          ? el("button", { class: "ready-button", type: "button", onclick: () => stationReady(order) },
            text("Готово", "Ready"))
          : "";
        return el("article", { class: `${held.has(order.id) ? "ticket held" : "ticket"}${alertOf(order)}`, id: `order-${order.id}` },
          el("header", {}, el("b", { class: "number" }, `№ ${order.number}`), posNumber(order),
            el("span", { class: "times" }, clock(order.created_ms), el("small", { class: "age" }, age(order.created_ms)))),
          el("ul", {}, ...lines), ready);
      });
    list.replaceChildren(...cards);
    document.getElementById("empty").hidden = cards.length > 0;
  }

  // The board: a column per shown status, the ready one wider and its newest numbers first (by when they became
  // ready). Numbers are as large as the column allows but never below the configured minimum: a column that does
  // not fit at the minimum shows its numbers page by page, turning every few seconds.
  // The minimum is set for a 1080p TV; a smaller screen (a tablet at the counter) scales it down with its height.
  const minNumber = () => Math.round(Number(root.dataset.minNumber || 90) * Math.min(1, innerHeight / 1080));
  const PAGE_MS = Number(root.dataset.pageSeconds || 8) * 1000;
  let boardPage = 0;

  function renderBoard() {
    const columns = document.getElementById("columns");
    const active = state.statuses.filter((s) => s.shown && !s.finished).sort((a, b) => a.id - b.id);
    const hideAfter = state.hide_ready_after_ms;
    const visible = sorted().filter((order) =>
      !(hideAfter > 0 && order.status_id === state.ready_status_id && now() - order.status_changed_ms > hideAfter));
    const rendered = active.map((status) => {
      const ready = status.id === state.ready_status_id;
      const inColumn = visible.filter((order) => order.status_id === status.id);
      if (ready) inColumn.sort((a, b) => b.status_changed_ms - a.status_changed_ms || b.number - a.number);
      const colors = { background: status.color, color: textColorFor(status.color) };
      const tiles = inColumn.map((order) => el("div", {
        class: (freshUntil.get(order.id) || 0) > now() ? "tile fresh" : "tile",
        "data-number": order.number, style: colors,
      }, String(order.number)));
      return el("section", { class: ready ? "board-column ready" : "board-column", "data-status": status.id },
        el("h2", { style: colors }, status.name, el("span", { class: "pager", hidden: "" })),
        el("div", { class: "tiles" }, ...tiles));
    });
    columns.replaceChildren(...rendered);
    fitTiles();
  }

  // The largest number size at which a column shows all its tiles; at the minimum, the tiles that fit make a page.
  function fitTiles() {
    const smallest = minNumber();
    for (const tiles of document.querySelectorAll(".tiles")) {
      const all = [...tiles.children];
      const fits = () => tiles.scrollHeight <= tiles.clientHeight + 1 && tiles.scrollWidth <= tiles.clientWidth + 1;
      tiles.style.setProperty("--tile", `${smallest}px`);
      const pager = tiles.parentElement.querySelector(".pager");
      if (fits()) {
        let low = smallest;
        let high = Math.max(smallest + 1, Math.floor(tiles.clientHeight / 2.5));
        while (high - low > 1) {
          const size = Math.floor((low + high) / 2);
          tiles.style.setProperty("--tile", `${size}px`);
          if (fits()) low = size;
          else high = size;
        }
        tiles.style.setProperty("--tile", `${low}px`);
        pager.hidden = true;
        continue;
      }
      const bottom = tiles.getBoundingClientRect().bottom;
      const perPage = Math.max(1, all.filter((tile) => tile.getBoundingClientRect().bottom <= bottom + 1).length);
      const pages = Math.ceil(all.length / perPage);
      const page = boardPage % pages;
      all.forEach((tile, index) => { tile.hidden = Math.floor(index / perPage) !== page; });
      pager.textContent = ` ${page + 1}/${pages}`;
      pager.hidden = pages === 1;
    }
  }

  function render() {
    if (!state) return;
    if (mode !== "board") renderRecall();
    if (mode === "operator") renderOperator();
    else if (mode === "kitchen") renderKitchen();
    else renderBoard();
  }

  const stream = mode === "board" ? "/dashboard" : "/screens";
  const FIRST_PAUSE = 1000;
  const LONGEST_PAUSE = 10000;
  let source = null;
  let pause = FIRST_PAUSE;
  let retryTimer = null;

  function reconnect() {
    clearTimeout(retryTimer);
    if (source) source.close();
    source = new EventSource(`${stream}/events?unit=${unit}`);
    source.addEventListener("snapshot", (event) => {
      pause = FIRST_PAUSE;
      setLink(true);
      applySnapshot(JSON.parse(event.data));
    });
    source.addEventListener("order", (event) => applyOrder(JSON.parse(event.data)));
    // The server is restarting, or the stream broke: the browser's own retry gives up on some errors, so the
    // screen retries itself.
    source.addEventListener("reconnect", lost);
    source.addEventListener("error", lost);
    // The server could not read the unit (its database is down, say): try again in a moment.
    source.addEventListener("failed", lost);
  }

  function lost() {
    if (source) source.close();
    source = null;
    setLink(false);
    clearTimeout(retryTimer);
    retryTimer = setTimeout(retry, pause);
    pause = Math.min(pause * 2, LONGEST_PAUSE);
  }

  // Asks for the snapshot first: an ended sign-in answers 401, which an event stream could not tell apart from
  // a network error.
  async function retry() {
    let response;
    try {
      response = await fetch(`${stream}/snapshot?unit=${unit}`, { headers: { accept: "application/json" } });
    } catch (_) {
      lost();
      return;
    }
    if (response.status === 401) { window.tillwire.signIn(); return; }
    if (!response.ok) { lost(); return; }
    reconnect();
  }

  reconnect();
  window.addEventListener("resize", () => mode === "board" && render());
  if (mode === "board") setInterval(() => { boardPage += 1; render(); }, PAGE_MS);
  // Ages, alerts and ready orders leaving the board follow the client's own clock; this redraws, it does not
  // poll the server.
  setInterval(render, 10000);
})();
