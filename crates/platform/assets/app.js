// Shared page helpers: CSRF-aware POST for buttons that change state without a full page load.
window.tillwire = {
  csrf() { return document.querySelector('meta[name="csrf-token"]')?.content || ""; },
  async post(url, data) {
    const body = new URLSearchParams(data);
    const response = await fetch(url, {
      method: "POST",
      headers: { "x-csrf-token": this.csrf(), "content-type": "application/x-www-form-urlencoded" },
      body,
    });
    const text = await response.text();
    let json = null;
    try { json = JSON.parse(text); } catch (_) { /* not JSON */ }
    if (!response.ok) throw new Error((json && json.error) || response.statusText);
    return json;
  },
};
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.dataset.confirm && !confirm(form.dataset.confirm)) event.preventDefault();
});
