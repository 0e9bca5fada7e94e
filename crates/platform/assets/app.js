// Shared page helpers: CSRF-aware POST for buttons that change state without a full page load, and forms that show
// their errors next to their fields.
window.tillwire = {
  csrf() { return document.querySelector('meta[name="csrf-token"]')?.content || ""; },
  async post(url, data) {
    const body = new URLSearchParams(data);
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: {
          accept: "application/json",
          "x-csrf-token": this.csrf(),
          "content-type": "application/x-www-form-urlencoded",
        },
        body,
      });
    } catch (_) {
      throw Object.assign(new Error(formText[this.lang()].offline), { code: "offline" });
    }
    const text = await response.text();
    let json = null;
    try { json = JSON.parse(text); } catch (_) { /* not JSON */ }
    if (!response.ok) {
      const message = (json && json.error) || formText[this.lang()].failed;
      throw Object.assign(new Error(message), { status: response.status, code: json && json.code });
    }
    return json;
  },
  lang() { return document.documentElement.lang === "en" ? "en" : "ru"; },
  // The sign-in form, coming back here after it.
  signIn() {
    const next = encodeURIComponent(location.pathname + location.search);
    location.assign(`/users/login/?next=${next}`);
  },
  // A short notice at the top of the screen that goes away by itself (never a blocking dialog).
  notice(message) {
    const node = document.createElement("p");
    node.className = "toast";
    node.setAttribute("role", "alert");
    node.textContent = message;
    document.body.append(node);
    setTimeout(() => node.remove(), 6000);
  },
};
// Forms post through fetch, so a refusal is shown on the form itself: its message above the form and each field's
// error next to that field (the server answers JSON when asked). Success follows the server's redirect or shows
// the page it answered. `data-plain` opts a form out.
const formText = {
  ru: { offline: "Нет связи с сервером: проверьте сеть и повторите.", failed: "Действие не выполнено." },
  en: { offline: "No connection to the server: check the network and try again.", failed: "The action failed." },
};
function clearFormErrors(form) {
  form.querySelectorAll(".form-error, .field-error").forEach((node) => node.remove());
  form.querySelectorAll("[aria-invalid]").forEach((node) => node.removeAttribute("aria-invalid"));
}
function showFormErrors(form, message, fields) {
  const unplaced = [];
  let first = null;
  for (const [name, text] of Object.entries(fields || {})) {
    const found = form.elements.namedItem(name);
    const input = found && (found instanceof RadioNodeList ? found[0] : found);
    if (!input || input.type === "hidden") { unplaced.push(text); continue; }
    const note = document.createElement("small");
    note.className = "field-error";
    note.setAttribute("role", "alert");
    note.textContent = text;
    input.setAttribute("aria-invalid", "true");
    input.insertAdjacentElement("afterend", note);
    first = first || input;
  }
  const banner = document.createElement("p");
  banner.className = "flash error form-error";
  banner.setAttribute("role", "alert");
  banner.textContent = [message, ...unplaced].filter(Boolean).join(" ");
  form.prepend(banner);
  (first || banner).scrollIntoView({ block: "nearest" });
  if (first) first.focus();
}
document.addEventListener("submit", async (event) => {
  const form = event.target;
  // A button may ask its own question (one form, several actions).
  const question = (event.submitter && event.submitter.dataset.confirm) || form.dataset.confirm;
  if (question && !confirm(question)) { event.preventDefault(); return; }
  // The attributes, not `form.method` / `form.action`: a control named "action" would stand in their place.
  if ((form.getAttribute("method") || "").toLowerCase() !== "post" || "plain" in form.dataset) return;
  event.preventDefault();
  clearFormErrors(form);
  const data = new FormData(form);
  if (event.submitter && event.submitter.name) data.append(event.submitter.name, event.submitter.value);
  const body = form.enctype === "multipart/form-data" ? data : new URLSearchParams(data);
  const lang = document.documentElement.lang === "en" ? "en" : "ru";
  let response;
  try {
    response = await fetch(new URL(form.getAttribute("action") || "", location.href), {
      method: "POST",
      headers: { accept: "application/json", "x-csrf-token": window.tillwire.csrf() },
      body,
    });
  } catch (_) {
    showFormErrors(form, formText[lang].offline, {});
    return;
  }
  const type = response.headers.get("content-type") || "";
  if (!response.ok && type.startsWith("application/json")) {
    const reply = await response.json();
    if (reply.code === "login_required") { window.tillwire.signIn(); return; }
    showFormErrors(form, reply.error, reply.fields);
    return;
  }
  if (response.redirected) { window.location.assign(response.url); return; }
  // A page answered in place (a preview, a key shown once) replaces this page's body rather than the document:
  // `document.write` would start a new document without this script's listeners, and its forms would then post
  // without it.
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  document.title = page.title;
  document.body.replaceWith(document.adoptNode(page.body));
  // A new page starts at its top, where its notice (a code or key shown once) is, unless it marks its place
  // (a preview next to the text being edited).
  const here = document.querySelector("[data-scroll-here]");
  if (here) here.scrollIntoView({ block: "center" }); else window.scrollTo(0, 0);
});
