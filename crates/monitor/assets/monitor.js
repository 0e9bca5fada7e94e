// The monitor's live pages: a changed tile is replaced where it stands, the page part is fetched again (at most
// every two seconds) when incidents open or close, and "answered" times count up in the browser.
(() => {
  const root = document.getElementById("monitor-live");
  if (!root) return;
  const dot = () => document.querySelector(".live-dot");
  let refetching = null;
  let lastFetch = 0;
  function refetch() {
    if (refetching || !root.dataset.fragment) return;
    const wait = Math.max(0, 2000 - (Date.now() - lastFetch));
    refetching = setTimeout(async () => {
      try {
        const response = await fetch(root.dataset.fragment, { headers: { accept: "text/html" } });
        if (response.status === 401) { window.tillwire.signIn(); return; }
        if (response.ok) { root.innerHTML = await response.text(); dot()?.classList.add("on"); tick(); }
      } catch (_) { /* offline: the stream reconnects and asks again */ }
      lastFetch = Date.now();
      refetching = null;
    }, wait);
  }
  function connect() {
    const source = new EventSource(root.dataset.stream);
    source.onopen = () => dot()?.classList.add("on");
    source.onerror = () => dot()?.classList.remove("on");
    source.addEventListener("tile", (event) => {
      const { id, html } = JSON.parse(event.data);
      const old = document.getElementById(`register-${id}`);
      if (!old) return;
      const holder = document.createElement("div");
      holder.innerHTML = html;
      const fresh = holder.firstElementChild;
      if (!fresh) return;
      fresh.classList.add("flash");
      old.replaceWith(fresh);
      setTimeout(() => fresh.classList.remove("flash"), 1200);
      tick();
    });
    source.addEventListener("stale", () => (root.dataset.fragment ? refetch() : location.reload()));
    source.addEventListener("reconnect", () => { source.close(); setTimeout(connect, 1000); });
  }
  const units = document.documentElement.lang === "en" ? ["s ago", "min ago", "h ago"] : ["с назад", "мин назад", "ч назад"];
  function tick() {
    const now = Date.now();
    document.querySelectorAll("time[data-ms]").forEach((node) => {
      const seconds = Math.max(0, Math.round((now - Number(node.dataset.ms)) / 1000));
      node.textContent = seconds < 60 ? `${seconds} ${units[0]}`
        : seconds < 3600 ? `${Math.floor(seconds / 60)} ${units[1]}` : `${Math.floor(seconds / 3600)} ${units[2]}`;
    });
  }
  connect();
  tick();
  setInterval(tick, 1000);
})();
