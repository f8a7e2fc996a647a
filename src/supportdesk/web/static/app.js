// supportdesk's own script (SPEC 14): live updates, presence and keyboard shortcuts on top of
// pages that work without it. No library; loaded as a module from our own origin (CSP).

const body = document.body;
const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? "";

// ---- live updates: the page reads itself again and swaps in the parts that changed ----
const regions = {
  queue: ["#queues", "#tickets tbody", "h1"],
  list: ["#tickets"],
  ticket: ["#thread", "#subject", "#fields", "#history"],
};

let refreshing = false;
let again = false;

async function refresh() {
  if (refreshing) { again = true; return; }
  refreshing = true;
  try {
    const response = await fetch(location.href, { credentials: "same-origin" });
    if (!response.ok) return;
    const next = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const selector of regions[body.dataset.page] ?? []) swap(selector, next);
  } finally {
    refreshing = false;
    if (again) { again = false; setTimeout(refresh, 100); }
  }
}

function swap(selector, next) {
  const current = document.querySelector(selector);
  const fresh = next.querySelector(selector);
  if (!current || !fresh || current.innerHTML === fresh.innerHTML) return;
  if (current.contains(document.activeElement) && selector === "#fields") return; // being edited
  const place = keyboardPlace(current);
  if (selector === "#thread") {
    const known = new Set([...current.querySelectorAll("li[id]")].map((li) => li.id));
    current.innerHTML = fresh.innerHTML;
    const added = [...current.querySelectorAll("li[id]")].filter((li) => !known.has(li.id));
    for (const li of added) li.classList.add("arrived");
    if (added.length) announce(`${added.length} new message${added.length > 1 ? "s" : ""}`);
  } else if (selector === "#tickets tbody") {
    const checked = new Set([...current.querySelectorAll("input:checked")].map((i) => i.value));
    current.innerHTML = fresh.innerHTML;
    for (const box of current.querySelectorAll("input[name=ids]")) box.checked = checked.has(box.value);
  } else {
    current.innerHTML = fresh.innerHTML;
  }
  restorePlace(current, place);
}

// where the keyboard was in a region (the j/k selection, the focus), found again by id or link
// after the region is replaced: a live update must not throw a keyboard user back to the top
function keyOf(el) {
  if (!el) return null;
  if (el.id) return `#${CSS.escape(el.id)}`;
  const href = el.getAttribute("href");
  return href ? `a[href="${CSS.escape(href)}"]` : null;
}

function keyboardPlace(region) {
  const focused = region.contains(document.activeElement) ? document.activeElement : null;
  return { selected: keyOf(region.querySelector(".selected")), focused: keyOf(focused) };
}

function restorePlace(region, place) {
  const selected = place.selected && region.querySelector(place.selected);
  if (selected) {
    selected.classList.add("selected");
    if (selected.tagName !== "A") selected.tabIndex = -1;
  }
  const focused = place.focused && region.querySelector(place.focused);
  if (focused) focused.focus({ preventScroll: true });
}

const status = document.createElement("p");
status.className = "visually-hidden";
status.setAttribute("role", "status");
body.append(status);
function announce(text) { status.textContent = text; }

if (body.dataset.live && "EventSource" in window) {
  const source = new EventSource(body.dataset.live);
  // a burst of events is one refresh; a list (every ticket's changes) at most once a second
  const gap = body.dataset.page === "ticket" ? 150 : 1000;
  let timer = null;
  const later = () => {
    if (timer === null) timer = setTimeout(() => { timer = null; refresh(); }, gap);
  };
  source.addEventListener("change", later);
  // the stream starts at its connection (and again at each reconnection): a change made
  // since the page was rendered would never arrive on it, so look once it is open
  source.addEventListener("open", later);
  addEventListener("pagehide", () => source.close());
}

// ---- presence: who else is on this ticket, and whether they are writing ----
const presenceUrl = body.dataset.presence;
if (presenceUrl) {
  const reply = document.getElementById("reply");
  const state = () => (reply && (document.activeElement === reply || reply.value.trim()) ? "replying" : "viewing");
  let last = "";
  const tell = async (value, keepalive = false) => {
    const form = new URLSearchParams({ state: value, csrf });
    const response = await fetch(presenceUrl, { method: "POST", body: form, keepalive, credentials: "same-origin" });
    if (!keepalive && response.ok) {
      const list = document.getElementById("presence");
      const html = await response.text();
      const fresh = new DOMParser().parseFromString(`<ul>${html}</ul>`, "text/html").querySelector("ul");
      if (list && fresh && list.innerHTML !== fresh.innerHTML) list.innerHTML = fresh.innerHTML;
    }
  };
  const beat = () => { last = state(); tell(last).catch(() => {}); };
  beat();
  setInterval(beat, 4000);
  reply?.addEventListener("focus", () => { if (last !== "replying") beat(); });
  reply?.addEventListener("input", () => { if (last !== "replying") beat(); });
  reply?.addEventListener("blur", () => { if (state() !== last) beat(); });
  addEventListener("pagehide", () => tell("left", true).catch(() => {}));
}

// ---- keyboard ----
const typing = (el) => el && (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName));

function items() {
  if (body.dataset.page === "queue") return [...document.querySelectorAll("#tickets tbody a.subject")];
  return [...document.querySelectorAll("#thread > li[id]")];
}

function move(step) {
  const list = items();
  if (!list.length) return;
  const at = list.findIndex((el) => el.classList.contains("selected"));
  const next = list[Math.min(list.length - 1, Math.max(0, at + step))];
  for (const el of list) el.classList.remove("selected");
  next.classList.add("selected");
  if (next.tagName !== "A") next.tabIndex = -1;
  next.focus();
  next.scrollIntoView({ block: "nearest" });
}

function submit(id) {
  const form = document.getElementById(id);
  if (form) form.requestSubmit();
}

addEventListener("keydown", (event) => {
  const target = event.target;
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && target.tagName === "TEXTAREA") {
    event.preventDefault();
    target.form?.requestSubmit();
    return;
  }
  if (typing(target) || event.ctrlKey || event.metaKey || event.altKey) return;
  if (!body.classList.contains("area-console")) return;
  const reply = document.getElementById("reply");
  const actions = {
    "?": () => document.getElementById("shortcuts")?.showModal(),
    j: () => move(1),
    k: () => move(-1),
    "/": () => { const search = document.getElementById("search"); if (search) search.focus(); else location.href = "/console/?focus=search"; },
    r: () => { document.querySelector('input[name=kind][value=reply]')?.click(); reply?.focus(); },
    n: () => { document.getElementById("kind-note")?.click(); reply?.focus(); },
    a: () => submit("assign-me"),
    c: () => submit("close-form"),
  };
  const action = actions[event.key];
  if (action) { event.preventDefault(); action(); }
});

if (new URLSearchParams(location.search).get("focus") === "search") document.getElementById("search")?.focus();
