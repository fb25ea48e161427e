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
