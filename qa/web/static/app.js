// A [n] marker brings its source card into view (on a phone, in the Sources drawer); the Sources button opens
// and closes that drawer.
function qaDrawer(open) {
  const column = document.getElementById("qa-sources-col");
  const button = document.getElementById("qa-sources-toggle");
  if (!column || !button) return;
  column.classList.toggle("qa-open", open);
  button.textContent = open ? "Back to the chat" : "Sources";
  button.setAttribute("aria-expanded", String(open));
}
document.addEventListener("click", (event) => {
  const toggle = event.target.closest && event.target.closest("#qa-sources-toggle");
  if (toggle) {
    qaDrawer(!document.getElementById("qa-sources-col").classList.contains("qa-open"));
    return;
  }
  const link = event.target.closest && event.target.closest('a[href^="#qa-src-"]');
  if (!link) return;
  event.preventDefault();
  event.stopPropagation();
  const card = document.getElementById(link.getAttribute("href").slice(1));
  if (!card) return;
  const group = card.closest("details");
  if (group) group.open = true;
  if (window.matchMedia("(max-width: 720px)").matches) qaDrawer(true);
  const panel = document.getElementById("qa-sources");
  if (panel && panel.contains(card)) {  // the card to the top of the Sources panel, then the panel into view
    panel.scrollTop += card.getBoundingClientRect().top - panel.getBoundingClientRect().top - 8;
  }
  card.scrollIntoView({block: "nearest"});
  card.classList.remove("qa-flash");
  void card.offsetWidth;
  card.classList.add("qa-flash");
  setTimeout(() => card.classList.remove("qa-flash"), 1600);
}, true);

// Copy buttons (an answer with its numbered sources; a citation's quote and link): the text is in data-copy.
function qaCopy(text) {
  if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
  const area = document.createElement("textarea");
  area.value = text;
  document.body.appendChild(area);
  area.select();
  document.execCommand("copy");
  area.remove();
  return Promise.resolve();
}
// Ask a question as if typed: the box filled, then Ask pressed.
function qaAsk(question) {
  const box = document.querySelector("#qa-question textarea");
  const send = document.getElementById("qa-send");
  if (!box || !send) return;
  box.value = question;
  box.dispatchEvent(new Event("input", {bubbles: true}));
  setTimeout(() => send.click(), 60);
}
document.addEventListener("click", (event) => {
  const target = event.target.closest ? event.target : null;
  if (!target) return;
  const copy = target.closest("[data-copy]");
  if (copy) {
    event.preventDefault();
    qaCopy(copy.dataset.copy).then(() => {
      const words = copy.textContent;
      copy.textContent = "Copied";
      copy.classList.add("qa-copied");
      setTimeout(() => { copy.textContent = words; copy.classList.remove("qa-copied"); }, 1500);
    });
    return;
  }
  const follow = target.closest('a[href="#qa-ask"]');
  if (follow) {  // a suggested follow-up: asked at once
    event.preventDefault();
    event.stopPropagation();
    qaAsk(follow.textContent.trim());
    return;
  }
  if (target.closest("#qa-theme")) { qaTheme(!document.body.classList.contains("dark"), true); return; }
  const filters = target.closest("#qa-filters > .label-wrap, #qa-filters button.label-wrap");
  if (filters) {  // opened: its controls into view (below the chat they would start under the fold)
    setTimeout(() => {
      const box = document.getElementById("qa-filters");
      if (box && box.querySelector(".label-wrap.open")) box.scrollIntoView({block: "end"});
    }, 120);
  }
}, true);

// The theme: the system's, until the reader picks one with the header's button (kept in this browser).
function qaTheme(dark, save) {
  document.body.classList.toggle("dark", dark);
  const button = document.getElementById("qa-theme");
  if (button) {
    button.textContent = dark ? "Light" : "Dark";
    button.setAttribute("aria-label", dark ? "Switch to the light theme" : "Switch to the dark theme");
  }
  if (save) localStorage.setItem("qa-theme", dark ? "dark" : "light");
}
function qaSavedTheme() {
  const saved = localStorage.getItem("qa-theme");
  if (saved && document.body.classList.contains("dark") !== (saved === "dark")) qaTheme(saved === "dark", false);
  else qaTheme(document.body.classList.contains("dark"), false);  // the button's words
}
function qaWatchTheme() {
  // Gradio sets the system's theme as it mounts, and again if the system's changes: the reader's choice wins.
  new MutationObserver(() => {
    const saved = localStorage.getItem("qa-theme");
    if (saved && document.body.classList.contains("dark") !== (saved === "dark")) qaSavedTheme();
  }).observe(document.body, {attributes: true, attributeFilter: ["class"]});
  let tries = 0;
  const wait = setInterval(() => {
    if (document.getElementById("qa-theme") || ++tries > 50) { clearInterval(wait); qaSavedTheme(); }
  }, 100);
}
// Gradio may add this script to the page after it has loaded.
if (document.readyState === "complete") qaWatchTheme(); else window.addEventListener("load", qaWatchTheme);

// Keys: "/" the question box, Esc stops an answer or closes the Sources drawer / the chats, Alt+N a new chat,
// Alt+T the theme.
document.addEventListener("keydown", (event) => {
  const typing = event.target.closest && event.target.closest("input, textarea, select, [contenteditable]");
  if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
    const box = document.querySelector("#qa-question textarea");
    if (box) { event.preventDefault(); box.focus(); }
    return;
  }
  if (event.key === "Escape") {
    const column = document.getElementById("qa-sources-col");
    const stop = document.getElementById("qa-stop");
    const sidebar = document.querySelector("#qa-sidebar.open, .sidebar.open");
    if (column && column.classList.contains("qa-open")) { qaDrawer(false); return; }
    if (stop && stop.offsetParent !== null) { stop.click(); return; }
    if (sidebar) { const t = sidebar.querySelector(".toggle-button"); if (t) t.click(); }
    return;
  }
  if (event.altKey && !event.ctrlKey && !event.metaKey && (event.code === "KeyN" || event.code === "KeyT")) {
    event.preventDefault();
    if (event.code === "KeyT") { qaTheme(!document.body.classList.contains("dark"), true); return; }
    const button = document.getElementById("qa-new-chat");
    if (button) button.click();
    const box = document.querySelector("#qa-question textarea");
    if (box) box.focus();
  }
});
