document.addEventListener("click", (event) => {
  const link = event.target.closest && event.target.closest('a[href^="#qa-src-"]');
  if (!link) return;
  event.preventDefault();
  event.stopPropagation();
  const card = document.getElementById(link.getAttribute("href").slice(1));
  if (!card) return;
  const group = card.closest("details");
  if (group) group.open = true;
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
</script>"""
