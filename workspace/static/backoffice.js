// The back office's keyboard: j/k move through the queue, Enter opens the ticket,
// c jumps to the comment box. Plain script, no library, nothing loaded from outside.
"use strict";
(function () {
  function typing(event) {
    const tag = (event.target.tagName || "").toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || event.target.isContentEditable;
  }
  function rows() { return Array.from(document.querySelectorAll("#queue tbody tr")); }
  let current = -1;
  function mark(index) {
    const all = rows();
    if (!all.length) { return; }
    current = Math.max(0, Math.min(all.length - 1, index));
    all.forEach(function (row, i) { row.classList.toggle("current", i === current); });
    const link = all[current].querySelector("a");
    if (link) { link.focus(); }
  }
  document.addEventListener("keydown", function (event) {
    if (typing(event) || event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (event.key === "j") { mark(current + 1); event.preventDefault(); }
    else if (event.key === "k") { mark(current - 1); event.preventDefault(); }
    else if (event.key === "Enter" && current >= 0 && document.activeElement === document.body) {
      window.location.href = rows()[current].dataset.href;
    } else if (event.key === "c") {
      const box = document.getElementById("comment");
      if (box) { box.focus(); event.preventDefault(); }
    }
  });
})();
